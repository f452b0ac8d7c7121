"""Pure tensor functions of RL post-training: advantages, policy losses, aggregation, KL, entropy, log-probs.

Only torch is imported here; nothing holds state or touches a model. Families selected by a config name live
in registries: `ADVANTAGES`, `POLICY_LOSSES`, `KL_ESTIMATORS` (plus the closed sets `AGGREGATION_MODES` and
`CORRECTIONS`, chosen by a string argument).
"""

from reasonrl.algorithms.advantages import ADVANTAGES, AdvantageEstimator, AdvantageInputs, discounted_returns
from reasonrl.algorithms.aggregation import (
    AGGREGATION_MODES,
    AggregationMode,
    aggregate_loss,
    loss_denominator,
)
from reasonrl.algorithms.corrections import CORRECTIONS, Correction, behaviour_weights
from reasonrl.algorithms.entropy import entropy_from_logits
from reasonrl.algorithms.kl import KL_ESTIMATORS, KLEstimator
from reasonrl.algorithms.logprobs import token_logprobs
from reasonrl.algorithms.policy_losses import POLICY_LOSSES, PolicyLoss, PolicyLossOutput, policy_loss
from reasonrl.algorithms.registry import Registry

__all__ = [
    "ADVANTAGES",
    "AGGREGATION_MODES",
    "CORRECTIONS",
    "KL_ESTIMATORS",
    "POLICY_LOSSES",
    "AdvantageEstimator",
    "AdvantageInputs",
    "AggregationMode",
    "Correction",
    "KLEstimator",
    "PolicyLoss",
    "PolicyLossOutput",
    "Registry",
    "aggregate_loss",
    "behaviour_weights",
    "discounted_returns",
    "entropy_from_logits",
    "loss_denominator",
    "policy_loss",
    "token_logprobs",
]
