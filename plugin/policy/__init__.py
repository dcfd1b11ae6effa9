"""Versioned policy data: unit ladder, code lists, limits, PTP pairs, KX amounts, phrases."""

from plugin.policy.loader import load_policy, user_policy_dir
from plugin.policy.model import Policy, PtpEdit

__all__ = ["Policy", "PtpEdit", "load_policy", "user_policy_dir"]
