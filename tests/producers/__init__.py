"""Real producers for the tests: fake LLM endpoint, OTLP receiver, producer venvs, driver."""
