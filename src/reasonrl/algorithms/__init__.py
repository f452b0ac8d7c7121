"""Pure tensor functions of RL post-training: advantages (incl. GAE), policy losses, aggregation, KL, entropy,
log-probs, critic losses, the dynamic-sampling group filter and attention-guided token credit weights.

Only torch is imported here; nothing holds state or touches a model. Families selected by a config name live
in registries (`reasonrl.plugins.Registry`, open to users' `module:name` plug-ins): `ADVANTAGES`,
`POLICY_LOSSES`, `CORRECTIONS`, `LOSS_AGGREGATIONS`, `KL_ESTIMATORS`.
"""

from reasonrl.algorithms.advantages import (
    ADVANTAGES,
    AdvantageEstimator,
    AdvantageInputs,
    discounted_returns,
    needs_critic,
)
from reasonrl.algorithms.aggregation import LOSS_AGGREGATIONS, Aggregation, aggregate_loss, loss_denominator
from reasonrl.algorithms.asyppo import critic_shards, disagreement_masks, ensemble_values
from reasonrl.algorithms.attention_credit import credit_weights
from reasonrl.algorithms.corrections import CORRECTIONS, Correction, behaviour_weights
from reasonrl.algorithms.entropy import entropy_from_logits
from reasonrl.algorithms.gae import gae, gae_returns
from reasonrl.algorithms.group_filter import informative_groups, kept_rows
from reasonrl.algorithms.kl import KL_ESTIMATORS, KLEstimator
from reasonrl.algorithms.logprobs import token_logprobs
from reasonrl.algorithms.policy_losses import POLICY_LOSSES, PolicyLoss, PolicyLossOutput, policy_loss
from reasonrl.algorithms.values import explained_variance, value_loss
from reasonrl.plugins import Registry

__all__ = [
    "ADVANTAGES",
    "CORRECTIONS",
    "KL_ESTIMATORS",
    "LOSS_AGGREGATIONS",
    "POLICY_LOSSES",
    "AdvantageEstimator",
    "AdvantageInputs",
    "Aggregation",
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
    "needs_critic",
    "policy_loss",
    "token_logprobs",
    "value_loss",
]
