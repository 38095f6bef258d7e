"""The chart's value for the subscriptions' own API threads (SUBSCRIPTION_CONCURRENCY), rendered by the real helm
and read back by the operator's own settings loader."""

from __future__ import annotations

import pytest

from gallery_operator.config import ENV_PREFIX, Settings, load_settings
from tests.e2e.charts import CHART, helm, operator_env, render

VARIABLE = f"{ENV_PREFIX}SUBSCRIPTION_CONCURRENCY"


def settings_of(documents: list[dict[str, object]]) -> Settings:
    """The settings the operator would start with under the rendered Deployment's environment."""
    return load_settings({name: value for name, value in operator_env(documents).items() if value is not None})


def test_the_default_render_carries_the_operators_own_default() -> None:
    documents = render()
    assert operator_env(documents)[VARIABLE] == "16"
    assert settings_of(documents).subscription_concurrency == Settings().subscription_concurrency


@pytest.mark.parametrize("threads", [1, 48, 256])
def test_the_value_reaches_the_operator(threads: int) -> None:
    documents = render(f"operator.subscriptionConcurrency={threads}")
    assert operator_env(documents)[VARIABLE] == str(threads)
    assert settings_of(documents).subscription_concurrency == threads


@pytest.mark.parametrize(
    ("threads", "problem"),
    [("0", "minimum: got 0, want 1"), ("257", "maximum: got 257, want 256"), ("many", "got string, want integer")],
)
def test_the_values_schema_refuses_what_the_operator_would(threads: str, problem: str) -> None:
    """The operator's own bounds (1 to 256), refused by the chart's schema with the value named."""
    result = helm("template", "g", str(CHART), "--set", f"operator.subscriptionConcurrency={threads}", check=False)
    assert result.returncode != 0
    assert f"at '/operator/subscriptionConcurrency': {problem}" in result.stderr
