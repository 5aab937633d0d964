"""When a worker must be ready, and when stopping it across a gap pays (SPEC §5).

One place for the two timing rules the scale-up and the scale-down must agree on:

- **ready target**: a booted worker is wanted ``scale_up_margin`` before its first need
  (``timeslot_start - instantiation_lead``). With ``replacement_lead`` it is also wanted
  early enough that, should the boot fail (a failure is only known when the boot would
  have ended), one replacement boot is still ready ``scale_up_margin`` before the first
  lab's *start*: the instantiation lead itself absorbs part of the replacement's boot.
  The replacement is a restart of a spare stopped worker when one exists (minutes), else
  a launch.
- **stop across a gap**: an idle worker is stopped when, restarted at the time the
  ready target asks for, it would be down at least ``stop_min_saving`` (the break-even:
  idle cost against stop + restart). The scale-up restarts it in time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.scaling.inputs import ScalingSettings, TemplateOffer

DEFAULT_RESTART = timedelta(minutes=5)
DEFAULT_STARTUP = timedelta(minutes=20)


def ready_target(
    first_need: datetime,
    first_start: datetime,
    margin: timedelta,
    replacement_boot: timedelta | None,
) -> datetime:
    """When a restart or launch should be ready for work first needed at ``first_need``
    (whose lab starts at ``first_start``); ``replacement_boot`` None = no replacement lead."""
    target = first_need - margin
    if replacement_boot is not None:
        target = min(target, first_start - margin - replacement_boot)
    return target


def replacement_boot(
    template: TemplateOffer | None, settings: ScalingSettings, *, spare_stopped: bool
) -> timedelta | None:
    """How long one replacement boot takes (None when the setting is off)."""
    if not settings.replacement_lead:
        return None
    if spare_stopped:
        return template.restart if template else DEFAULT_RESTART
    return template.startup if template else DEFAULT_STARTUP


def restart_at_for(
    next_need: datetime,
    template: TemplateOffer | None,
    settings: ScalingSettings,
    *,
    spare_stopped: bool,
) -> datetime:
    """When a worker stopped now must be restarted to be ready for ``next_need``."""
    restart = template.restart if template else DEFAULT_RESTART
    first_start = next_need + settings.instantiation_lead
    target = ready_target(next_need, first_start, settings.scale_up_margin,
                          replacement_boot(template, settings, spare_stopped=spare_stopped))
    return target - restart


def stop_pays(
    now: datetime,
    next_need: datetime,
    template: TemplateOffer | None,
    settings: ScalingSettings,
    *,
    spare_stopped: bool,
) -> tuple[bool, datetime]:
    """Whether stopping now and restarting in time saves at least ``stop_min_saving``;
    and when that restart would be."""
    restart_at = restart_at_for(next_need, template, settings, spare_stopped=spare_stopped)
    return restart_at - now >= settings.stop_min_saving, restart_at
