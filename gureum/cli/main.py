"""The `gureum` command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from gureum.config import Config


def _config(args: argparse.Namespace) -> Config:
    cfg = Config()
    if getattr(args, "data_dir", None):
        cfg.data_dir = Path(args.data_dir).resolve()
    if getattr(args, "port", None):
        cfg.port = args.port
    if getattr(args, "host", None):
        cfg.host = args.host
    return cfg


def cmd_up(args: argparse.Namespace) -> int:
    from gureum.cli.up import up
    from gureum.errors import ConfigError

    try:
        return up(_config(args), profile=args.profile, write_profile=not args.no_profile)
    except ConfigError as err:  # e.g. plain HTTP asked for beyond loopback
        print(f"gureum: {err}", file=sys.stderr)
        return 2


def cmd_agent(args: argparse.Namespace) -> int:
    import logging

    from gureum.agent.service import serve

    cfg = _config(args)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, filename=str(cfg.data_dir / "agent.log"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.join:
        from gureum.cli import hosts
        from gureum.hosts.join import JoinFailed

        if not (args.token and args.name and args.listen):
            print("gureum agent --join needs --token, --name and --listen", file=sys.stderr)
            return 2
        try:
            return hosts.agent_join(cfg, args.join, args.token, args.name, args.zone,
                                    args.listen, args.address, args.ca)
        except JoinFailed as err:
            print(f"gureum agent: join refused or failed: {err}", file=sys.stderr)
            return 1
    socket_path = Path(args.socket or cfg.agent_socket or cfg.data_dir / "agent.sock")
    return serve(cfg, socket_path)


def cmd_account_create(args: argparse.Namespace) -> int:
    from gureum.cloud import Cloud

    cloud = Cloud(_config(args), with_agent=False)
    if cloud.account_by_name(args.name):
        print(f"account {args.name!r} already exists", file=sys.stderr)
        return 1
    account_id, access, secret = cloud.create_account(args.name)
    print(json.dumps({"AccountId": account_id, "AccessKeyId": access,
                      "SecretAccessKey": secret}, indent=2))
    return 0


def cmd_account_list(args: argparse.Namespace) -> int:
    from gureum.cli import accounts

    return accounts.guarded(lambda: accounts.list_accounts(_config(args), args.json))


def cmd_account_delete(args: argparse.Namespace) -> int:
    from gureum.cli import accounts

    return accounts.guarded(lambda: accounts.delete_account(_config(args), args.account,
                                                            args.yes))


def cmd_host_list(args: argparse.Namespace) -> int:
    from gureum.cli import accounts, hosts

    return accounts.guarded(lambda: hosts.list_hosts(_config(args), args.json))


def cmd_host_change(args: argparse.Namespace) -> int:
    from gureum.cli import accounts, hosts

    return accounts.guarded(lambda: hosts.change(_config(args), args.sub, args.host_ref))


def cmd_host_token(args: argparse.Namespace) -> int:
    from gureum.cli import accounts, hosts

    return accounts.guarded(lambda: hosts.token(_config(args), args.rotate))


def cmd_host_usage(args: argparse.Namespace) -> int:
    from gureum.cli import accounts

    return accounts.guarded(lambda: accounts.host_usage(_config(args), args.json))


def cmd_image_import(args: argparse.Namespace) -> int:
    from gureum.cli.image_import import run

    return run(_config(args), args.source, args.name, args.account, args.description, args.init)


def cmd_image_build(args: argparse.Namespace) -> int:
    from gureum.cli.up import build_image

    build_image(_config(args), force=True)
    return 0


def cmd_ssh(args: argparse.Namespace) -> int:
    from gureum.cli.ssh import ssh_command

    cmd = ssh_command(_config(args), args.instance_id, args.identity, args.command)
    os.execvp(cmd[0], cmd)


def cmd_logs(args: argparse.Namespace) -> int:
    if not args.instance_id.startswith("i-"):  # an app's name: its instances' app output
        from gureum.deploy import commands

        return commands.logs(_config(args), args.instance_id, args.lines, follow=args.follow)
    from gureum.cli.logs import stream_console

    return stream_console(_config(args), args.instance_id, follow=args.follow)


def cmd_console_link(args: argparse.Namespace) -> int:
    from gureum.cli.console_link import console_link

    return console_link(_config(args), args.account, args.hours)


def cmd_deploy(args: argparse.Namespace) -> int:
    from gureum.deploy import commands

    return commands.deploy(_config(args), args.path, args.name, args.profile,
                           args.domain, args.certificate)


def cmd_apps(args: argparse.Namespace) -> int:
    from gureum.deploy import commands

    return commands.apps(_config(args), args.profile)


def cmd_releases(args: argparse.Namespace) -> int:
    from gureum.deploy import commands

    return commands.releases(_config(args), args.app, args.profile)


def cmd_rollback(args: argparse.Namespace) -> int:
    from gureum.deploy import commands

    return commands.rollback(_config(args), args.app, args.release, args.profile)


def cmd_destroy(args: argparse.Namespace) -> int:
    from gureum.deploy import commands

    return commands.destroy(_config(args), args.app, args.yes, args.profile)


def cmd_scale(args: argparse.Namespace) -> int:
    from gureum.deploy import commands

    return commands.scale(_config(args), args.app, args.count, args.min, args.max,
                          args.cpu_target, args.profile)


def cmd_env(args: argparse.Namespace) -> int:
    from gureum.deploy import commands

    return commands.env(_config(args), args.app, args.action, args.pairs, args.profile)


def cmd_doctor(args: argparse.Namespace) -> int:
    from gureum.agent.agent import HostAgent

    cfg = _config(args)
    agent = HostAgent(cfg)
    if args.clean:
        agent.clean_everything()
    objects = agent.host_objects()
    total = sum(len(v) for v in objects.values())
    exposure = {"public_pool": cfg.public_pool, "public_interface": cfg.public_interface or None,
                "publish_address": cfg.publish_address or None, "dns_listen": cfg.dns_listen}
    print(json.dumps({"prefix": cfg.prefix, "data_dir": str(cfg.data_dir), "exposure": exposure,
                      "objects": objects}, indent=2))
    return 0 if total == 0 or not args.expect_clean else 1


def cmd_db_migrate(args: argparse.Namespace) -> int:
    from gureum.cli import db

    return db.migrate(_config(args))


def cmd_db_copy(args: argparse.Namespace) -> int:
    from gureum.cli import db

    return db.copy(_config(args), args.source, args.target)


def cmd_coverage(args: argparse.Namespace) -> int:
    from gureum.cli.coverage import write_coverage

    write_coverage(Path(args.output))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gureum", description="A self-hosted EC2.")
    parser.add_argument("--data-dir", help="state directory (env GUREUM_DATA_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the cloud in the foreground")
    up.add_argument("--port", type=int, help="API port (env GUREUM_PORT, default 8773)")
    up.add_argument("--host", help="API address (env GUREUM_HOST, default 127.0.0.1)")
    up.add_argument("--profile", default="gureum", help="AWS profile name to write")
    up.add_argument("--no-profile", action="store_true", help="do not write an AWS profile")
    up.set_defaults(func=cmd_up)

    agent = sub.add_parser("agent", help="run the host agent as its own process")
    agent.add_argument("--socket", help="unix socket (env GUREUM_AGENT_SOCKET, default <data>/agent.sock)")
    agent.add_argument("--join", metavar="URL", help="join the cloud whose API is at URL "
                       "as one more host (serves the agent over TLS instead of a socket)")
    agent.add_argument("--token", help="the join token `gureum up` printed (`gureum host token`)")
    agent.add_argument("--name", help="this host's name in the cloud")
    agent.add_argument("--zone", help="its availability zone (default: the region's first, "
                                      "e.g. gureum-1a)")
    agent.add_argument("--listen", metavar="ADDR:PORT", help="where the agent listens (TLS)")
    agent.add_argument("--address", help="how the control plane reaches it (default: the "
                                         "--listen address)")
    agent.add_argument("--ca", help="the cloud CA's certificate, to verify the control plane "
                                    "(a copy of its <data>/pki/ca.pem)")
    agent.set_defaults(func=cmd_agent)

    account = sub.add_parser("account", help="accounts").add_subparsers(dest="sub", required=True)
    create = account.add_parser("create", help="create an account and print its credentials")
    create.add_argument("name")
    create.set_defaults(func=cmd_account_create)
    listing = account.add_parser("list", help="every account: access keys, instances, "
                                              "volumes, load balancers, Auto Scaling groups")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_account_list)
    remove = account.add_parser("delete", help="terminate and remove everything an account "
                                               "owns, then the account (needs `gureum up`)")
    remove.add_argument("account", help="its 12-digit id or its name")
    remove.add_argument("--yes", action="store_true", help="really delete it")
    remove.add_argument("--host", help="the API's address, as `gureum up --host`")
    remove.add_argument("--port", type=int, help="the API's port, as `gureum up --port`")
    remove.set_defaults(func=cmd_account_delete)

    host = sub.add_parser("host", help="the hosts").add_subparsers(dest="sub", required=True)
    usage = host.add_parser("usage", help="every account's instances and the vCPUs and "
                                          "memory they take of the host")
    usage.add_argument("--json", action="store_true")
    usage.set_defaults(func=cmd_host_usage)
    hlist = host.add_parser("list", help="every host: zone, state, capacity, instances")
    hlist.add_argument("--json", action="store_true")
    hlist.set_defaults(func=cmd_host_list)
    for verb, text in (("drain", "no new instances on this host"),
                       ("undrain", "the host takes new instances again"),
                       ("remove", "forget a host that holds no instance")):
        cmd = host.add_parser(verb, help=text)
        cmd.add_argument("host_ref", metavar="HOST", help="its name or host id")
        cmd.set_defaults(func=cmd_host_change)
    tok = host.add_parser("token", help="print the join token (`--rotate`: a new one)")
    tok.add_argument("--rotate", action="store_true")
    tok.set_defaults(func=cmd_host_token)

    image = sub.add_parser("image", help="images").add_subparsers(dest="sub", required=True)
    image.add_parser("build", help="(re)build the default image").set_defaults(func=cmd_image_build)
    imp = image.add_parser("import", help="register a root filesystem (tar[.gz|.xz|.zst] or a "
                                          "disk image) as an image of an account")
    imp.add_argument("source")
    imp.add_argument("--name", required=True, help="the image's name (3-128 characters)")
    imp.add_argument("--account", default="default", help="the owning account's name")
    imp.add_argument("--description", default="")
    imp.add_argument("--init", choices=("tini", "systemd"), default="tini",
                     help="what runs as PID 1: gureum's boot script under tini, or systemd")
    imp.set_defaults(func=cmd_image_import)

    ssh = sub.add_parser("ssh", help="open a shell on an instance")
    ssh.add_argument("instance_id")
    ssh.add_argument("-i", "--identity", help="private key file (default: <KeyName>.pem)")
    ssh.add_argument("command", nargs=argparse.REMAINDER)
    ssh.set_defaults(func=cmd_ssh)

    logs = sub.add_parser("logs", help="print an instance's console output, or an app's "
                                       "output on every instance")
    logs.add_argument("instance_id", help="an instance id (i-...) or an app's name")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new output")
    logs.add_argument("-n", "--lines", type=int, default=100, help="an app's last lines "
                                                                   "per instance")
    logs.set_defaults(func=cmd_logs)

    link = sub.add_parser("console-link", help="print a one-time sign-in link for the web "
                                               "console of the `gureum up` on this host")
    link.add_argument("--account", default="default", help="account id or name (default: "
                                                           "the default account)")
    link.add_argument("--hours", type=float, default=24.0, help="valid for (default 24)")
    link.add_argument("--port", type=int, help="the API port it serves (env GUREUM_PORT)")
    link.add_argument("--host", help="the API address it serves (env GUREUM_HOST)")
    link.set_defaults(func=cmd_console_link)

    def app_command(name: str, help_text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--profile", default="gureum", help="AWS profile (default gureum; "
                         "else the data directory's default account)")
        return cmd

    dep = app_command("deploy", "deploy the app in PATH: release image, load balancer, "
                                "Auto Scaling group; later deploys roll without downtime")
    dep.add_argument("path", nargs="?", default=".")
    dep.add_argument("--name", help="the app's name (default: gureum.toml's, else the folder's)")
    dep.add_argument("--domain", action="append", metavar="HOST",
                     help="a host name of yours it also answers to (repeatable)")
    dep.add_argument("--certificate", metavar="ARN",
                     help="an ACM certificate for those names (default: the cloud's CA signs one)")
    dep.set_defaults(func=cmd_deploy)
    app_command("apps", "list deployed apps").set_defaults(func=cmd_apps)
    rel = app_command("releases", "list an app's releases")
    rel.add_argument("app")
    rel.set_defaults(func=cmd_releases)
    rb = app_command("rollback", "roll an app back to an earlier release (no rebuild)")
    rb.add_argument("app")
    rb.add_argument("release", nargs="?", help="e.g. v3 (default: the one before the current)")
    rb.set_defaults(func=cmd_rollback)
    de = app_command("destroy", "remove everything gureum deploy made for an app")
    de.add_argument("app")
    de.add_argument("--yes", action="store_true", help="really remove it")
    de.set_defaults(func=cmd_destroy)
    sc = app_command("scale", "set an app's instance count (and bounds)")
    sc.add_argument("app")
    sc.add_argument("count", nargs="?", type=int)
    sc.add_argument("--min", type=int)
    sc.add_argument("--max", type=int)
    sc.add_argument("--cpu-target", type=float, metavar="PERCENT",
                    help="add or remove instances to keep average CPU near this (0: off)")
    sc.set_defaults(func=cmd_scale)
    en = app_command("env", "show or change an app's environment (a change is a new release)")
    en.add_argument("app")
    en.add_argument("action", nargs="?", choices=("list", "set", "unset"), default="list")
    en.add_argument("pairs", nargs="*", help="NAME=value for set, NAME for unset")
    en.set_defaults(func=cmd_env)

    doctor = sub.add_parser("doctor", help="list host objects this data directory owns")
    doctor.add_argument("--expect-clean", action="store_true", help="exit 1 if any remain")
    doctor.add_argument("--clean", action="store_true",
                        help="remove every host object of this data directory (disks are kept)")
    doctor.set_defaults(func=cmd_doctor)

    db = sub.add_parser("db", help="the state's database").add_subparsers(dest="sub",
                                                                         required=True)
    db.add_parser("migrate", help="upgrade the database's schema to this version's (env "
                                  "GUREUM_DATABASE_URL, else <data>/gureum.db)"
                  ).set_defaults(func=cmd_db_migrate)
    cp = db.add_parser("copy", help="copy the whole state into an empty database (stop "
                                    "`gureum up` first), e.g. SQLite to PostgreSQL")
    cp.add_argument("--from", dest="source", help="source URL (default: <data>/gureum.db)")
    cp.add_argument("--to", dest="target", required=True,
                    help="target URL, e.g. postgresql+psycopg://gureum@/gureum?host=/run/postgresql")
    cp.set_defaults(func=cmd_db_copy)

    cov = sub.add_parser("coverage", help="write the implemented-actions page")
    cov.add_argument("--output", default="docs/COVERAGE.md")
    cov.set_defaults(func=cmd_coverage)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
