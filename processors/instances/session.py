"""What a user gets when the lab is READY: where to log in, each device's port, and the CML
serial console of each running node."""

from __future__ import annotations

from typing import Any

from domain.definition import DefinitionVersion
from domain.instance import LabletInstance
from processors.instances.naming import user_session_id
from processors.ports.cml import NodeConsole


def user_session(
    instance: LabletInstance,
    version: DefinitionVersion | None,
    *,
    host: str,
    lab_id: str,
    login_url_template: str,
    consoles: list[NodeConsole] | None = None,
    console_url_template: str = "https://{host}/console/{key}",
) -> dict[str, Any]:
    """``{session_id, login_url, lab_id, host, devices: [{name, protocol, host, port}],
    consoles: [{node, line, key, url, open}]}``.

    Devices follow the definition's port template (its order, its protocols); a port the
    template does not describe (an old definition) is listed with protocol ``unknown``.
    Consoles are CML's serial consoles: ``url`` opens one in the controller's web console
    (``console_url_template`` with ``{host}``, ``{key}``, ``{lab_id}``), ``open`` is the command
    for CML's SSH console server on the same host.
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
        "consoles": [
            {"node": console.node, "line": console.line, "key": console.key,
             "url": console_url_template.format(host=host, key=console.key, lab_id=lab_id),
             "open": f"open /{lab_id}/{console.node}/{console.line}"}
            for console in sorted(consoles or [], key=lambda c: (c.node, c.line))
        ],
    }
