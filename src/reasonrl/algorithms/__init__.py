"""Pure tensor functions of RL post-training: advantages (incl. GAE), policy losses, aggregation, KL, entropy,
log-probs, critic losses, the dynamic-sampling group filter and attention-guided token credit weights.

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
from reasonrl.algorithms.asyppo import critic_shards, disagreement_masks, ensemble_values
from reasonrl.algorithms.attention_credit import credit_weights
from reasonrl.algorithms.corrections import CORRECTIONS, Correction, behaviour_weights
from reasonrl.algorithms.entropy import entropy_from_logits
from reasonrl.algorithms.gae import CRITIC_ESTIMATORS, gae, gae_returns
from reasonrl.algorithms.group_filter import informative_groups, kept_rows
from reasonrl.algorithms.kl import KL_ESTIMATORS, KLEstimator
from reasonrl.algorithms.logprobs import token_logprobs
from reasonrl.algorithms.policy_losses import POLICY_LOSSES, PolicyLoss, PolicyLossOutput, policy_loss
from reasonrl.algorithms.registry import Registry
from reasonrl.algorithms.values import explained_variance, value_loss

__all__ = [
    "ADVANTAGES",
    "AGGREGATION_MODES",
    "CORRECTIONS",
    "CRITIC_ESTIMATORS",
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
    "credit_weights",
    "critic_shards",
    "disagreement_masks",
    "discounted_returns",
    "ensemble_values",
    "entropy_from_logits",
    "explained_variance",
    "gae",
    "gae_returns",
    "informative_groups",
    "kept_rows",
    "loss_denominator",
    "policy_loss",
    "token_logprobs",
    "value_loss",
]
