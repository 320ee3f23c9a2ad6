"""`python -m otel_costattr.cli`."""

import sys

from . import main

sys.exit(main())
