"""System and account routes: ``system_information`` (no auth), login and logout, health,
statistics, users, resource pools and the controller-wide console key list."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from adapters.cml.controller_check import parse_version
from adapters.cml.lab_machine import ACTIVE
from tests.cml.fake_cml import catalog
from tests.cml.fake_cml.errors import cml_error
from tests.cml.fake_cml.lab import COMPUTE_ID
from tests.cml.fake_cml.state import FakeCml

API = "/api/v0"
OPEN_PATHS = frozenset({f"{API}/system_information", f"{API}/authenticate", f"{API}/auth_extended"})


def bearer_token(request: Request) -> str:
    return request.headers.get("authorization", "").removeprefix("Bearer ").strip()


def register(app: FastAPI, fake: FakeCml) -> None:
    @app.get(f"{API}/system_information")
    async def system_information() -> dict[str, Any]:
        return {"version": fake.version, "ready": fake.ready, "allow_ssh_pubkey_auth": False,
                "oui": "52:54:00:00:00:00", "timeout": 0, "features": []}

    @app.post(f"{API}/authenticate")
    async def authenticate(request: Request) -> Any:
        body = await request.json()
        if not _credentials_match(fake, body):
            return cml_error(403, "Authentication failed!")
        return fake.issue_token()

    @app.post(f"{API}/auth_extended")
    async def auth_extended(request: Request) -> Any:
        body = await request.json()
        if not _credentials_match(fake, body):
            return cml_error(403, "Authentication failed!")
        return {"username": fake.username, "id": fake.user_id, "token": fake.issue_token(), "admin": True}

    @app.get(f"{API}/authentication")
    async def authentication(request: Request) -> Any:
        if _before_2_10(fake):  # the route came with CML 2.10; older clients call authok
            return cml_error(404, f"Not Found: GET {request.url.path}")
        return _user(fake)

    @app.get(f"{API}/authok")
    async def authok() -> None:  # the pre-2.10 check: 200 with an empty body
        return None

    @app.delete(f"{API}/logout")
    async def logout(request: Request, clear_all_sessions: bool = False) -> bool:
        fake.revoke(bearer_token(request), all_sessions=clear_all_sessions)
        return True

    @app.get(f"{API}/users")
    async def users() -> list[dict[str, Any]]:
        return [_user(fake)]

    @app.get(f"{API}/users/{{user_id}}")
    async def user(user_id: str) -> Any:
        if user_id != fake.user_id:
            return cml_error(404, f"User not found: {user_id}")
        return _user(fake)

    @app.get(f"{API}/system_health")
    async def system_health() -> dict[str, Any]:
        compute = {
            "kvm_vmx_enabled": True, "enough_cpus": True, "lld_connected": fake.ready, "lld_synced": fake.ready,
            "libvirt": True, "fabric": True, "device_mux": True, "docker_shim": True,
            # CML 2.9 does not report overloads (None there).
            **dict.fromkeys(("cpu_overload", "memory_overload", "disk_overload"), None if _before_2_10(fake) else False),
            "refplat_images_available": True, "valid": fake.ready, "is_controller": True,
            "admission_state": "READY" if fake.ready else "ONLINE", "hostname": "cml-controller",
        }
        controller = {"core_connected": True, "nodes_loaded": True, "images_loaded": True, "valid": True}
        return {"valid": fake.ready, "is_licensed": True, "is_enterprise": False,
                "computes": {COMPUTE_ID: compute}, "controller": controller}

    @app.get(f"{API}/system_stats")
    async def system_stats() -> dict[str, Any]:
        now = fake.now()
        running = [node for lab in fake.labs.values() for node in lab.nodes.values()
                   if (node.advance(now), node.state)[1] in ACTIVE]
        memory = {"used": 2**30 + len(running) * 512 * 2**20, "total": 32 * 2**30}
        memory["free"] = memory["total"] - memory["used"]
        disk = {"used": 20 * 2**30, "free": 80 * 2**30, "total": 100 * 2**30}
        cpu = {"count": 8, "percent": min(100.0, 2.0 + 5.0 * len(running))}
        dominfo = {"allocated_cpus": len(running), "allocated_memory": len(running) * 512,
                   "total_nodes": sum(len(lab.nodes) for lab in fake.labs.values()), "total_orphans": 0,
                   "running_nodes": len(running), "running_orphans": 0}
        stats = {"cpu": {**cpu, "model": "fake", "hyperthreading": False, "predicted": 8, "load": [0.1, 0.1, 0.1]},
                 "memory": memory, "disk": disk, "dominfo": dominfo}
        return {"computes": {COMPUTE_ID: {"hostname": "cml-controller", "is_controller": True, "stats": stats}},
                "all": {"cpu": cpu, "memory": memory, "disk": disk}, "controller": {"disk": disk}}

    @app.get(f"{API}/resource_pools")
    async def resource_pools(data: bool = False) -> list[Any]:
        return []  # no pools configured: nodes run on the system's resources

    @app.get(f"{API}/keys/console")
    async def console_keys() -> dict[str, dict[str, Any]]:
        now = fake.now()
        keys: dict[str, dict[str, Any]] = {}
        for lab in fake.labs.values():
            for node_id, node in lab.nodes.items():
                node.advance(now)
                if node.state not in ACTIVE:
                    continue
                driver = catalog.definition(node.spec.node_definition).driver
                for line, key in enumerate(lab.console_keys.get(node_id, [])):
                    keys[key] = {"node_id": node_id, "lab_id": lab.id, "compute_id": COMPUTE_ID,
                                 "label": node.spec.label, "driver": driver, "line": line}
        return keys


def _before_2_10(fake: FakeCml) -> bool:
    version = parse_version(fake.version)
    return version is not None and version < (2, 10, 0)


def _credentials_match(fake: FakeCml, body: Any) -> bool:
    return isinstance(body, dict) and body.get("username") == fake.username and body.get("password") == fake.password


def _user(fake: FakeCml) -> dict[str, Any]:
    return {"id": fake.user_id, "username": fake.username, "fullname": fake.fullname, "admin": True,
            "email": "", "description": "", "groups": [], "labs": list(fake.labs), "opt_in": "unset",
            "resource_pool": None, "tour_version": "", "pubkey": None, "directory_dn": None}
