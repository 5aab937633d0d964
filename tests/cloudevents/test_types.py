"""The type rule, its overrides, and uniqueness over every event class in domain/."""

from __future__ import annotations

import pytest

from adapters.cloudevents.mapping import type_of
from adapters.cloudevents.types import (
    VALID_TYPE,
    aggregate_name_of,
    catalog,
    cloudevent_type,
    domain_aggregates,
    event_classes,
    words,
)
from tests.cloudevents.support import ctx


@pytest.mark.parametrize(
    ("aggregate", "event", "expected"),
    [
        ("LabletInstance", "InstanceScheduled", "ccm.lablet.instance.scheduled"),
        ("LabletInstance", "LabletInstanceScheduled", "ccm.lablet.instance.scheduled"),
        ("LabletInstance", "GradingStarted", "ccm.lablet.instance.grading.started"),
        ("LabletInstance", "InstanceRequested", "ccm.lablet.instance.requested"),
        ("Worker", "DrainingStarted", "ccm.worker.draining"),
        ("Worker", "WorkerDrainingStarted", "ccm.worker.draining"),
        ("Worker", "WorkerLaunched", "ccm.worker.launched"),
        ("WorkerTemplate", "TemplateRegistered", "ccm.worker.template.registered"),
        ("WorkerTemplate", "WorkerTemplateRegistered", "ccm.worker.template.registered"),
        ("LabletDefinition", "DefinitionVersionPublished", "ccm.lablet.definition.version.published"),
        ("WebhookSubscription", "SubscriptionCreated", "ccm.subscription.created"),
        ("Worker", "Created", "ccm.worker.created"),
        ("LabletInstance", "CMLLabImported", "ccm.lablet.instance.cml.lab.imported"),
        ("LabletInstance", "UserLoggedIn", "ccm.lablet.instance.user.logged_in"),
        ("ScalingDecision", "ScalingAuditStarted", "ccm.scaling.audit.started"),
        ("ScalingDecision", "ScalingDecided", "ccm.scaling.decided"),
        ("ScalingDecision", "ScalingActionsRejected", "ccm.scaling.actions.rejected"),
        ("CloudReconciliation", "CloudReconciled", "ccm.cloud.reconciled"),
        # A name that is only the aggregate word is kept, never emptied.
        ("Worker", "Worker", "ccm.worker.worker"),
    ],
)
def test_rule_and_overrides(aggregate, event, expected):
    assert cloudevent_type(aggregate, event) == expected


def test_words_split_acronyms_and_digits():
    assert words("CMLLabImported") == ["CML", "Lab", "Imported"]
    assert words("Ec2InstanceStarted") == ["Ec", "2", "Instance", "Started"]


def test_every_domain_event_maps_to_a_unique_valid_type():
    rows = catalog()
    assert ("ccm.subscription.created", "WebhookSubscription.SubscriptionCreated", ["url", "types", "subjects", "mode", "owner", "secret", "auth_token", "allowed_rate"]) in rows
    seen: dict[str, str] = {}
    for t, name, _ in rows:
        assert VALID_TYPE.match(t), (name, t)
        assert t not in seen, f"{name} and {seen[t]} both map to {t}"
        seen[t] = name


def test_recorded_events_map_like_their_declared_class():
    """The library re-creates nested event classes; the type must not depend on which one."""
    from domain.subscription import WebhookSubscription

    sub = WebhookSubscription.create(ctx(), url="https://x.example/h", secret="whsec_" + "A" * 32, owner="o")
    sub.disable(ctx(), "test")
    created, disabled = sub.collect_events()
    assert type_of(created) == "ccm.subscription.created"
    assert type_of(disabled) == "ccm.subscription.disabled"
    for aggregate in domain_aggregates():
        for cls in event_classes(aggregate):
            assert aggregate_name_of(cls) == aggregate.__name__


def test_generic_base_events_take_the_aggregate_from_the_stream_id():
    from domain.base import LrmAggregate

    assert aggregate_name_of(LrmAggregate.Created, "Worker-123") == "Worker"
    with pytest.raises(ValueError):
        aggregate_name_of(LrmAggregate.Created)
