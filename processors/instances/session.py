"""What a user gets when the lab is READY: where to log in, and each device's console port."""

from __future__ import annotations

from typing import Any

from domain.definition import DefinitionVersion
from domain.instance import LabletInstance
from processors.instances.naming import user_session_id


def user_session(
    instance: LabletInstance,
    version: DefinitionVersion | None,
    *,
    host: str,
    lab_id: str,
    login_url_template: str,
) -> dict[str, Any]:
    """``{session_id, login_url, lab_id, host, devices: [{name, protocol, host, port}]}``.

    Devices follow the definition's port template (its order, its protocols); a port the
    template does not describe (an old definition) is listed with protocol ``unknown``.
    """
    protocols = {p.name: p.protocol for p in version.port_template} if version is not None else {}
    order = list(protocols) + sorted(set(instance.allocated_ports) - set(protocols))
    devices = [
        {"name": name, "protocol": protocols.get(name, "unknown"), "host": host,
         "port": instance.allocated_ports[name]}
        for name in order
        if name in instance.allocated_ports
    ]
    return {
        "session_id": user_session_id(instance, lab_id),
        "login_url": login_url_template.format(host=host, lab_id=lab_id, instance_id=instance.id),
        "lab_id": lab_id,
        "host": host,
        "devices": devices,
    }
