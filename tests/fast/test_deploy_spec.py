"""gureum deploy's app detection and gureum.toml (no cloud needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gureum.deploy import DeployError
from gureum.deploy import release as rel
from gureum.deploy.spec import default_name, load

APPS = Path(__file__).resolve().parent.parent / "deploy_apps"


def test_fixture_apps_are_detected() -> None:
    py = load(APPS / "python")
    assert (py.kind, py.start, py.health_path, py.min_size, py.max_size) == \
        ("python", "python3 app.py", "/health", 2, 3)
    assert py.env == {"GREETING": "annyeong"} and py.name == "python"
    node = load(APPS / "node", name="hello-node")
    assert (node.kind, node.start, node.name) == ("node", "node server.js", "hello-node")
    static = load(APPS / "static")
    assert static.kind == "static" and "http.server" in static.start


def test_procfile_web_line_wins_over_detection(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("flask\n")
    (tmp_path / "app.py").write_text("")
    (tmp_path / "Procfile").write_text("worker: python3 jobs.py\nweb: gunicorn app:app\n")
    spec = load(tmp_path, name="web")
    assert (spec.kind, spec.start) == ("python", "gunicorn app:app")


def test_pyproject_without_a_main_needs_a_start_command(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\n")
    with pytest.raises(DeployError, match="no start command for the python app"):
        load(tmp_path, name="x-app")


@pytest.mark.parametrize("toml, message", [
    ('start = "x"\nbogus = 1\n', "unknown key"),
    ('start = "x"\nport = 80\n', "port must be"),
    ('start = "x"\nmin = 3\nmax = 2\n', "max must be"),
    ('start = "x"\nhealth_path = "health"\n', "health_path must start"),
    ('start = "x"\n[env]\nPORT = "1"\n', "PORT is set by gureum"),
    ('start = "x"\n[env]\n"BAD-NAME" = "1"\n', "not a valid environment variable"),
    ('start = "x"\n[env]\nA = "two\\nlines"\n', "newline"),
    ('start = \n', "gureum.toml"),
    ('name = "Bad_Name"\nstart = "x"\n', "not a valid app name"),
    ('start = "x"\ndomains = "a.example"\n', "domains must be a list"),
    ('start = "x"\ndomains = ["not a name"]\n', "is not a host name"),
    ('start = "x"\ndomains = ["a.io", "b.io", "c.io", "d.io", "e.io"]\n', "at most 4"),
    ('start = "x"\ncertificate = "cert-1"\n', "ACM certificate ARN"),
])
def test_bad_descriptions_are_clear_errors(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "gureum.toml").write_text(toml)
    with pytest.raises(DeployError, match=message):
        load(tmp_path)


def test_domains_are_read_lowercased_and_deduplicated(tmp_path: Path) -> None:
    (tmp_path / "gureum.toml").write_text(
        'start = "x"\ndomains = ["Shop.Example.com.", "shop.example.com", "api.example.com"]\n')
    assert load(tmp_path).domains == ["shop.example.com", "api.example.com"]


def test_an_empty_folder_is_no_app(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="no app found"):
        load(tmp_path)
    with pytest.raises(DeployError, match="no such folder"):
        load(tmp_path / "missing")


def test_default_names_are_valid_app_names() -> None:
    assert default_name(Path("/src/My_Shop.v2")) == "my-shop-v2"
    assert default_name(Path("/src/2048-game")) == "game"
    assert default_name(Path("/src/___")) == "app"


def test_environment_file_round_trips_quotes_and_dollars() -> None:
    env = {"A": 'say "hi" \\ $HOME', "B": ""}
    text = rel.env_file_text(env)
    assert 'A="say \\"hi\\" \\\\ \\$HOME"' in text
    assert rel.parse_env_file(text) == env


def test_unit_runs_the_start_command_with_port_and_restarts() -> None:
    unit = rel.unit_text("hello", "v3", 'python3 -m http.server "$PORT"', 8000)
    assert 'ExecStart=/bin/sh -c "exec python3 -m http.server \\"$$PORT\\""' in unit
    assert "Environment=PORT=8000" in unit and "Restart=always" in unit
    assert "EnvironmentFile=/etc/gureum/app.env" in unit
    assert unit.index("StartLimitIntervalSec=0") < unit.index("[Service]")
