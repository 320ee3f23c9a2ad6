"""Budget and anomaly alerts over the store: rules as data (``alerts.toml``), two evaluators
(the store: `check_once`, `AlertWatcher`; in-process per-run budgets: `RunBudgetProcessor`),
states in the ``alert_events`` table, delivery to webhooks and Slack on a background thread.

``rules.py`` the rule model and file format; ``windows.py`` where a window lies;
``measure.py`` a metric per scope value from the call contract; ``evaluate.py`` the states
and what to notify; ``state.py`` the tables; ``payload.py`` what channels are sent;
``deliver.py`` the delivery thread; ``watch.py`` the store evaluators; ``processor.py`` the
per-run span processor.
"""

from .deliver import Notification, Notifier
from .evaluate import Evaluation, evaluate
from .payload import PAYLOAD_VERSION, build_payload, slack_message
from .processor import RunBudgetProcessor
from .rules import AlertRulesError, Channel, Rule, RuleSet, load_rules, parse_rules
from .watch import AlertWatcher, CheckResult, check_once

__all__ = [
    "PAYLOAD_VERSION",
    "AlertRulesError",
    "AlertWatcher",
    "Channel",
    "CheckResult",
    "Evaluation",
    "Notification",
    "Notifier",
    "Rule",
    "RuleSet",
    "RunBudgetProcessor",
    "build_payload",
    "check_once",
    "evaluate",
    "load_rules",
    "parse_rules",
    "slack_message",
]
