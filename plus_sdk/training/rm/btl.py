"""The BTL baseline: one scalar reward, Bradley–Terry loss, no user context."""

from __future__ import annotations

from plus_sdk.training.rm.base import RewardMethod


class BTL(RewardMethod):
    """−log σ(r_chosen − r_rejected) on the prompt and response alone."""

    name = "btl"
