"""The `eucasim` command: start the cloud, print credentials, and administer accounts,
users, keys and VM types through the CLC's admin API."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from pydantic import BaseModel
from rich.table import Table

from services import (cli_backup, cli_services, cli_status, cli_trace, cli_zone_services,
                      credentials, launcher, readiness)
from services.cli_calls import HomeOption, call_service, config_for, console
from services.cli_network import network_app
from services.cli_nodes import nc, node_app
from services.cli_properties import property_app
from services.cli_experiment import experiment_app
from services.cli_fault import fault_app
from services.cli_lab import lab_app
from services.cli_snapshots import snapshot_app
from services.cli_images import certificate_exports, certificate_files, image_app
from services.config import CloudConfig
from services.messages.admin import (ADMIN_ACCOUNTS_ROUTE, ADMIN_KEYS_ROUTE, ADMIN_USERS_ROUTE,
                                     ADMIN_VMTYPE_ROUTE, ADMIN_VMTYPES_ROUTE, AccountCreated,
                                     AccountList, NewAccount, NewKey, NewUser, UserView,
                                     VmTypeList, VmTypeSpec)
from services.messages.identity import AccessKeyInfo

app = typer.Typer(help="eucasim: a private cloud in the shape of Eucalyptus.", no_args_is_help=True)
account_app = typer.Typer(help="Accounts.", no_args_is_help=True)
user_app = typer.Typer(help="Users of an account.", no_args_is_help=True)
key_app = typer.Typer(help="Access keys.", no_args_is_help=True)
vmtype_app = typer.Typer(help="VM types (instance types).", no_args_is_help=True)
app.add_typer(account_app, name="account")
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="key")
app.add_typer(vmtype_app, name="vmtype")
app.add_typer(image_app, name="image")
app.command()(cli_status.status)
app.command("describe-services")(cli_services.describe)
cli_zone_services.install(app)
app.add_typer(node_app, name="node")
app.add_typer(property_app, name="property")
app.add_typer(network_app, name="network")
app.add_typer(lab_app, name="lab")
app.add_typer(snapshot_app, name="snapshot")
app.add_typer(experiment_app, name="experiment")
app.add_typer(fault_app, name="fault")
app.command()(nc)
app.command()(cli_backup.backup)
app.command()(cli_backup.restore)

out = console()
err = console(stderr=True)



def _admin_call(config: CloudConfig, method: str, path: str, body: BaseModel | None,
                response: type[BaseModel]) -> Any:
    return call_service(config, "clc", method, path, body, response)


@app.command()
def up(home: HomeOption = None,
       nodes: Annotated[int, typer.Option(help="Simulated nodes served by the NC.")] = 2) -> None:
    """Start every service on this machine (simulated mode) until Ctrl-C or SIGTERM."""
    launcher.handle_stop_signals()
    started: list[launcher.RunningService] = []
    code = 0
    try:
        config = launcher.ensure_home(config_for(home))
        lock = launcher.lock_home(config)  # noqa: F841 (held until this process ends)
        specs = launcher.plan(config, nodes)
        out.print(f"Starting {', '.join(s.name for s in specs)} with state in {config.EUCASIM_HOME} …")
        launcher.start(config, specs, started=started,
                       on_started=lambda s: out.print(f"  [green]✓[/green] {s.spec.name:7} {s.url}"))
        # The banner promises a launch: wait until the CLC admits one on every node.
        readiness.wait_ready(config, started, len(config.nodes) or nodes)
        _announce(config, started)
        code = launcher.wait_forever(started)
    except KeyboardInterrupt:
        code = 0
    except RuntimeError as exc:  # PortsInUse, HomeInUse, a service that did not come up
        err.print(f"[red]{exc}[/red]", highlight=False, soft_wrap=True)
        code = 1
    finally:
        # Whatever ends it (a stop signal, a dead service, a closed terminal), stop every child.
        launcher.stop(started)
    raise typer.Exit(code)


def _announce(config: CloudConfig, services: list[launcher.RunningService]) -> None:
    """The banner: how to point the AWS CLI at the cloud, and a sample image to run."""
    try:
        image_id = readiness.register_tiny_image(config, services)
    except Exception as exc:  # the cloud is still usable without its sample image
        err.print(f"[yellow]could not register the tiny sample image: {exc}[/yellow]")
        image_id = None
    creds = credentials.read(config.EUCASIM_HOME)
    out.print("\nThe cloud is up. Point the AWS CLI at it with:\n")
    print(credentials.env_exports(creds), flush=True)
    out.print("then try:  aws ec2 describe-availability-zones")
    if image_id:
        print(f"and:       aws ec2 run-instances --image-id {image_id} --instance-type m1.small",
              flush=True)
    out.print("(Ctrl-C stops everything.)")


@app.command("credentials")
def show_credentials(home: HomeOption = None) -> None:
    """The admin's access key and secret, eucarc lines and an AWS CLI profile."""
    creds = _read_credentials(home)
    config_section, creds_section = credentials.aws_profile(creds)
    out.print(f"Access key: {creds.key.access_key}\nSecret key: {creds.key.secret_key}\n"
              f"Account:    {creds.key.account_name} ({creds.key.account_id})\n")
    folder = credentials.credentials_dir(config_for(home).EUCASIM_HOME)
    out.print(f"# eucarc (source {folder / 'eucarc'})", style="bold")
    print((folder / "eucarc").read_text())
    out.print("# ~/.aws/config", style="bold")
    print(config_section)
    out.print("# ~/.aws/credentials", style="bold")
    print(creds_section)
    files = certificate_files(config_for(home).EUCASIM_HOME, creds.key)
    out.print("# certificates (bundling images)", style="bold")
    print(certificate_exports(files, creds.key.account_id))


@app.command("get-credentials")
def get_credentials(
    file: Annotated[Path, typer.Argument(help="Where to write the zip (e.g. admin.zip).")],
    home: HomeOption = None,
) -> None:
    """The admin's credentials zip, as euca-get-credentials wrote it: eucarc, iamrc, the
    user's certificate and key and the cloud's certificate. Unzip it and `source eucarc`."""
    config = config_for(home)
    creds = _read_credentials(home)
    if file.exists():
        err.print(f"[red]{file} exists; not overwriting it[/red]")
        raise typer.Exit(1)
    data = credentials.credentials_zip(credentials.user_credential_files(config.EUCASIM_HOME, creds))
    file.write_bytes(data)
    file.chmod(0o600)
    out.print(f"wrote {file}")


@app.command()
def env(home: HomeOption = None) -> None:
    """Shell exports for the AWS CLI and boto3: eval "$(eucasim env)"."""
    sys.stdout.write(credentials.env_exports(_read_credentials(home)))


@app.command()
def trace(request_id: str, home: HomeOption = None) -> None:
    """Show one request as it travelled CLC → CC → NC (the request id is in every answer)."""
    config = config_for(home)
    steps, unreachable = cli_trace.gather(config, request_id)
    cli_trace.show(out, request_id, steps, unreachable)
    if not steps:  # an unknown id is a failure a script must be able to see
        raise typer.Exit(1)


def _read_credentials(home: Path | None) -> credentials.UserCredentials:
    try:
        return credentials.read(config_for(home).EUCASIM_HOME)
    except FileNotFoundError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def _print_key(info: AccessKeyInfo) -> None:
    out.print(f"account {info.account_name} ({info.account_id}) user {info.user_name}\n"
              f"AWS_ACCESS_KEY_ID={info.access_key}\nAWS_SECRET_ACCESS_KEY={info.secret_key}")


@account_app.command("create")
def account_create(name: str, home: HomeOption = None) -> None:
    created: AccountCreated = _admin_call(config_for(home), "POST", ADMIN_ACCOUNTS_ROUTE,
                                          NewAccount(name=name), AccountCreated)
    _print_key(created.key)


@account_app.command("list")
def account_list(home: HomeOption = None) -> None:
    listing: AccountList = _admin_call(config_for(home), "GET", ADMIN_ACCOUNTS_ROUTE, None, AccountList)
    table = Table("account", "id", "users")
    for account in listing.accounts:
        table.add_row(account.name, account.id, ", ".join(account.users))
    out.print(table)


@user_app.command("create")
def user_create(account: str, name: str, home: HomeOption = None) -> None:
    user: UserView = _admin_call(config_for(home), "POST", ADMIN_USERS_ROUTE,
                                 NewUser(account=account, name=name), UserView)
    out.print(f"user {user.name} created in account {user.account} ({user.account_id})")


@key_app.command("create")
def key_create(account: str, user: str = typer.Argument("admin"), home: HomeOption = None) -> None:
    info: AccessKeyInfo = _admin_call(config_for(home), "POST", ADMIN_KEYS_ROUTE,
                                      NewKey(account=account, user=user), AccessKeyInfo)
    _print_key(info)


@vmtype_app.command("set")
def vmtype_set(name: str, cpu: Annotated[int, typer.Option("--cpu", min=1)],
               mem: Annotated[int, typer.Option("--mem", min=1, help="MB")],
               disk: Annotated[int, typer.Option("--disk", min=1, help="GB")],
               home: HomeOption = None) -> None:
    spec = VmTypeSpec(name=name, cpu=cpu, memory_mb=mem, disk_gb=disk)
    _admin_call(config_for(home), "PUT", ADMIN_VMTYPE_ROUTE.format(name=quote(name, safe="")), spec, VmTypeSpec)
    out.print(f"{name}: {cpu} CPU, {mem} MB, {disk} GB")


@vmtype_app.command("list")
def vmtype_list(home: HomeOption = None) -> None:
    listing: VmTypeList = _admin_call(config_for(home), "GET", ADMIN_VMTYPES_ROUTE, None, VmTypeList)
    table = Table("name", "cpu", "memory MB", "disk GB")
    for vm in listing.vm_types:
        table.add_row(vm.name, str(vm.cpu), str(vm.memory_mb), str(vm.disk_gb))
    out.print(table)


if __name__ == "__main__":
    app()
