"""The deployment examples (examples/deploy/), checked by their own tools from Debian: the systemd
unit by `systemd-analyze`, the Caddyfile by `caddy validate`, the nginx site by `nginx -t` and by
a real nginx on 127.0.0.1 in front of a real `clicktochat serve`: a visitor's request reaches the
app with the visitor's address, not nginx's, and not one the visitor wrote. tests/run.sh installs
the packages (nginx, caddy, systemd) when they are missing; nothing here is skipped."""

from __future__ import annotations

import datetime
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from clicktochat.settings import Settings
from clicktochat.visitors import Salts
from conftest import IPHONE, connect_db, free_port, running

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "examples" / "deploy"
POSTGRESQL = ROOT / "examples" / "postgresql"
README = (ROOT / "README.md").read_text()
HOST = "chat.example.com"


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    assert found, f"{name} is missing: tests/run.sh installs it (apt-get install {name})"
    return found


def run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd)


def substituted(text: str, changes: dict[str, str]) -> str:
    """Each change made exactly once: an example edited out of the test's reach fails loudly."""
    for old, new in changes.items():
        assert text.count(old) == 1, f"{old!r} is not in the example exactly once"
        text = text.replace(old, new)
    return text


# -- systemd --------------------------------------------------------------------------------------


@pytest.fixture
def unit(tmp_path: Path) -> Path:
    """The unit as shipped, but starting this checkout's clicktochat (verify wants a real program)."""
    program = Path(sys.executable).parent / "clicktochat"
    path = tmp_path / "clicktochat.service"
    path.write_text(substituted((DEPLOY / "clicktochat.service").read_text(),
                                {"ExecStart=/opt/clicktochat/bin/clicktochat serve": f"ExecStart={program} serve"}))
    return path


def test_the_systemd_unit_passes_systemd_analyze_verify(unit: Path) -> None:
    done = run(tool("systemd-analyze"), "verify", "--man=no", str(unit))
    assert (done.returncode, done.stderr) == (0, "")  # verify reports unknown keys and bad values on stderr only
    text = unit.read_text()
    for line in ("User=clicktochat", "StateDirectory=clicktochat", "Environment=CLICKTOCHAT_DB=/var/lib/clicktochat/",
                 "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict"):  # fmt: skip
        assert line in text


def test_systemd_analyze_would_see_a_mistake(unit: Path) -> None:
    """The check above means something: a misspelt key is reported."""
    unit.write_text(unit.read_text().replace("Restart=on-failure", "Restart=on-failure\nRestartSecs=3"))
    assert "Unknown key 'RestartSecs'" in run(tool("systemd-analyze"), "verify", "--man=no", str(unit)).stderr


def test_the_systemd_unit_is_hardened(unit: Path) -> None:
    done = run(tool("systemd-analyze"), "security", "--offline=yes", str(unit))
    level = re.search(r"Overall exposure level for clicktochat.service: (\d+\.\d)", done.stdout)
    assert level, done.stdout + done.stderr
    assert float(level.group(1)) <= 2.5, done.stdout  # systemd's scale: 0 (safe) to 10; 2.0 today ("OK")


@pytest.fixture
def instance_unit(tmp_path: Path) -> Path:
    """examples/postgresql's template unit, as `clicktochat@8001.service` names an instance of it."""
    program = Path(sys.executable).parent / "clicktochat"
    template = tmp_path / "clicktochat@.service"
    template.write_text(substituted((POSTGRESQL / "clicktochat@.service").read_text(),
                                    {"ExecStart=/opt/clicktochat/bin/clicktochat serve": f"ExecStart={program} serve"}))
    instance = tmp_path / "clicktochat@8001.service"
    instance.symlink_to(template.name)
    return instance


def test_the_instances_template_unit_passes_verify_is_hardened_and_takes_its_port(instance_unit: Path) -> None:
    done = run(tool("systemd-analyze"), "verify", "--man=no", str(instance_unit))
    assert (done.returncode, done.stderr) == (0, "")
    text = instance_unit.read_text()
    assert "Environment=CLICKTOCHAT_PORT=%i" in text and "CLICKTOCHAT_DB=" not in text.split("[Service]")[1].split(
        "EnvironmentFile")[0]  # the database comes from the settings file: never the SQLite file left behind
    security = run(tool("systemd-analyze"), "security", "--offline=yes", str(instance_unit))
    level = re.search(r"Overall exposure level for clicktochat@8001.service: (\d+\.\d)", security.stdout)
    assert level and float(level.group(1)) <= 2.5, security.stdout + security.stderr
    broken = instance_unit.resolve()
    broken.write_text(broken.read_text().replace("Restart=on-failure", "Restart=on-failure\nRestartSecs=3"))
    assert "Unknown key 'RestartSecs'" in run(tool("systemd-analyze"), "verify", "--man=no", str(instance_unit)).stderr


# -- Caddy ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("upstream", [None, "clicktochat:8000"])
def test_the_caddyfile_passes_caddy_validate(upstream: str | None, tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    if upstream:
        env["CLICKTOCHAT_UPSTREAM"] = upstream  # as compose.yaml sets it
    argv = [tool("caddy"), "adapt", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"]
    adapted = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    assert adapted.returncode == 0, adapted.stderr
    assert f'"dial":"{upstream or "127.0.0.1:8000"}"' in adapted.stdout
    assert '"max_header_bytes":64000' in adapted.stdout and '"max_size":4000000' in adapted.stdout
    validated = subprocess.run([tool("caddy"), "validate", *argv[2:]], capture_output=True, text=True, timeout=120,
                               env=env)  # fmt: skip
    assert validated.returncode == 0 and "Valid configuration" in validated.stdout + validated.stderr


# -- nginx ----------------------------------------------------------------------------------------


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
            .sign(key, hashes.SHA256()))  # fmt: skip
    cert_path, key_path = folder / "fullchain.pem", folder / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


def nginx_config(folder: Path, app_port: int, http_port: int, https_port: int, example: Path = DEPLOY / "nginx.conf",
                 upstreams: dict[str, str] | None = None) -> Path:  # fmt: skip
    """The example site on 127.0.0.1's free ports, with a throwaway certificate, inside the few
    lines of main configuration nginx.conf has on Debian (here: files in `folder`, in the foreground)."""
    cert, key = self_signed(folder)
    site = substituted(example.read_text(), {
        **(upstreams or {"server 127.0.0.1:8000;": f"server 127.0.0.1:{app_port};"}),
        "    listen 80;\n    listen [::]:80;\n": f"    listen 127.0.0.1:{http_port};\n",
        "    listen 443 ssl http2;": f"    listen 127.0.0.1:{https_port} ssl http2;",
        "    listen [::]:443 ssl http2;\n": "",
        f"/etc/letsencrypt/live/{HOST}/fullchain.pem": str(cert),
        f"/etc/letsencrypt/live/{HOST}/privkey.pem": str(key),
    })  # fmt: skip
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                              "scgi"))  # fmt: skip
    path = folder / "nginx.conf"
    path.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")  # the workers read this test's private folder
        + f"daemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'};\n"
        + "events {}\nhttp {\n" + temp + "\n" + site + "\n}\n"
    )
    return path


def test_the_nginx_site_passes_nginx_t(tmp_path: Path) -> None:
    config = nginx_config(tmp_path, free_port(), free_port(), free_port())
    done = run(tool("nginx"), "-t", "-c", str(config), "-p", str(tmp_path), "-e", "stderr")
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr and "test is successful" in done.stderr
    broken = tmp_path / "broken.conf"
    broken.write_text(config.read_text().replace("proxy_set_header Host $host;", "proxy_set_header Host;"))
    assert run(tool("nginx"), "-t", "-c", str(broken), "-p", str(tmp_path), "-e", "stderr").returncode == 1


@pytest.fixture
def proxied(tmp_path: Path, db_path: str) -> Iterator[tuple[int, int, str]]:
    """(nginx's https port, its http port, the database) with `clicktochat serve` behind nginx."""
    db = db_path
    made = subprocess.run([sys.executable, "-m", "clicktochat", "link", "create", "--to", "+39 347 123 4567",
                           "--short", "--slug", "vetrina", "--db", db], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert made.returncode == 0, made.stderr
    app_port, http_port, https_port = free_port(), free_port(), free_port()
    config = nginx_config(tmp_path, app_port, http_port, https_port)
    env = {"CLICKTOCHAT_BASE_URL": f"https://{HOST}", "CLICKTOCHAT_TRUSTED_PROXIES": "127.0.0.1",
           "CLICKTOCHAT_FLUSH_INTERVAL": "0.05"}  # fmt: skip
    argv = [sys.executable, "-m", "clicktochat", "serve", "--db", db, "--port", str(app_port),
            "--log-level", "warning"]  # fmt: skip
    with running(argv, app_port, env):
        nginx = subprocess.Popen([tool("nginx"), "-c", str(config), "-p", str(tmp_path), "-e", "stderr"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while True:  # a bounded wait for nginx to listen
                try:
                    httpx.get(f"https://127.0.0.1:{https_port}/healthz", verify=False, timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    assert nginx.poll() is None, nginx.stderr.read() if nginx.stderr else ""
                    assert time.monotonic() < deadline, "nginx did not start"
                    time.sleep(0.1)
            yield https_port, http_port, db
        finally:
            nginx.terminate()
            nginx.wait(30)
            if nginx.stderr:
                nginx.stderr.close()


def visitor(db: str) -> tuple[str, int, str, str]:
    """(visitor hash, at, link kind, link key) of the one click, once the writer has written it."""
    deadline = time.monotonic() + 30
    while True:
        with connect_db(db) as connection:
            found = connection.execute("SELECT visitor, at, link_kind, link_key FROM clicks").fetchall()
        if found:
            ((hashed, at, kind, key),) = found
            return str(hashed), int(at), str(kind), str(key)
        assert time.monotonic() < deadline, "the click was not written"
        time.sleep(0.05)


def hashed_as(db: str, address: str, at: int, kind: str, key: str) -> str:
    with connect_db(db) as connection:
        (saved,) = connection.execute("SELECT value FROM meta WHERE key = 'visitor_salts'").fetchone()
    return Salts(Settings().unique_window, saved).hashes(at, address, IPHONE, kind, key)[0]


@pytest.mark.e2e
def test_a_request_through_nginx_reaches_the_app_with_the_visitors_address(
    proxied: tuple[int, int, str],
) -> None:
    https_port, http_port, db = proxied
    # The visitor is 127.0.0.2 (nginx and the app are on 127.0.0.1) and writes an X-Forwarded-For
    # of their own, as anyone can, to pose as someone else.
    transport = httpx.HTTPTransport(local_address="127.0.0.2", verify=False)
    with httpx.Client(transport=transport, headers={"host": HOST, "user-agent": IPHONE}, timeout=10) as phone:
        click = phone.get(f"https://127.0.0.1:{https_port}/s/vetrina", headers={"x-forwarded-for": "203.0.113.9"})
        assert click.status_code == 302 and click.headers["location"].startswith("https://wa.me/393471234567")

        hashed, at, kind, key = visitor(db)
        assert hashed == hashed_as(db, "127.0.0.2", at, kind, key)  # the visitor, as nginx saw them
        assert hashed != hashed_as(db, "127.0.0.1", at, kind, key)  # not nginx
        assert hashed != hashed_as(db, "203.0.113.9", at, kind, key)  # not what the visitor wrote

        plain = phone.get(f"http://127.0.0.1:{http_port}/s/vetrina")  # port 80 sends to HTTPS
        assert plain.status_code == 301 and plain.headers["location"] == f"https://{HOST}/s/vetrina"
        # Heads past nginx's buffers are refused by nginx, before the app (whose own cap is 64 KiB).
        big = phone.get(f"https://127.0.0.1:{https_port}/healthz", headers={"x-big": "x" * 9000})
        assert big.status_code == 400 and "nginx" in big.text
        # nginx passes the Host on: the app answers only for its own name.
        stranger = phone.get(f"https://127.0.0.1:{https_port}/s/vetrina", headers={"host": "evil.example"})
        assert stranger.status_code == 400


# -- the README --------------------------------------------------------------------------------


def test_ci_runs_the_test_command_the_readme_gives_developers() -> None:
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line and not line.startswith(("#", "set ", "cd "))]  # fmt: skip
    development = README.split("\n## Development\n", 1)[1]
    blocks = [block.strip() for block in re.findall(r"```sh\n(.*?)```", development, re.S)]
    assert ci == blocks[:1] == ["bash tests/run.sh"]  # the first command a developer is given is CI's
    assert "installs Debian's\n  **Chromium**" in development
    quick_start = README.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    assert "tests/run.sh" not in quick_start  # a shop owner following the Quick start never installs Chromium


def test_the_readme_backs_up_without_the_sqlite3_program() -> None:
    assert 'sqlite3 clicktochat.db ".backup' not in README
    assert "clicktochat backup " in README and "clicktochat restore " in README and "pg_dump" in README


def test_every_deployment_file_the_readme_names_exists() -> None:
    named = set(re.findall(r"examples/deploy/([\w.-]+)", README))
    assert named >= {"clicktochat.service", "clicktochat.env", "Caddyfile", "nginx.conf", "Dockerfile", "compose.yaml"}
    for name in named:
        assert (DEPLOY / name).is_file(), name


# -- the container ---------------------------------------------------------------------------------
# No container tool can build here (no Docker daemon; buildah cannot reach Docker Hub for the base
# image), so this checks what the image's build does with our files: the build context that
# Dockerfile.dockerignore lets through holds everything the COPY lines name, and `pip install .`
# from exactly those files makes a package that serves.


def test_the_images_build_context_is_enough_to_install_the_package(tmp_path: Path) -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    sources = [line.split()[1:-1] for line in dockerfile.splitlines() if line.startswith("COPY ")]
    copied = [name for names in sources for name in names]
    assert copied == ["pyproject.toml", "README.md", "src", "templates", "widget"]
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[1] == "*" and all(f"!{name}{'/' if (ROOT / name).is_dir() else ''}" in ignore for name in copied)

    context = tmp_path / "context"
    context.mkdir()
    for name in copied:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, context / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path / "wheel"), str(context)],
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "wheel").glob("clicktochat-*.whl")
    assert wheel.stat().st_size > 100_000
    assert 'CMD ["clicktochat", "serve"]' in dockerfile and "USER clicktochat" in dockerfile
    assert "ENV CLICKTOCHAT_DB=/data/clicktochat.db" in dockerfile and "CLICKTOCHAT_HOST=0.0.0.0" in dockerfile


# -- several instances on PostgreSQL (examples/postgresql, issue 13) ---------------------------------


@pytest.mark.parametrize("upstreams", [None, "clicktochat-1:8000 clicktochat-2:8000"])
def test_the_load_balancing_caddyfile_passes_caddy_validate(upstreams: str | None, tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    if upstreams:
        env["CLICKTOCHAT_UPSTREAMS"] = upstreams  # as docker-compose.yml sets it
    argv = [tool("caddy"), "adapt", "--config", str(POSTGRESQL / "Caddyfile"), "--adapter", "caddyfile"]
    adapted = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    assert adapted.returncode == 0, adapted.stderr
    dials = re.findall(r'"dial":"([^"]+)"', adapted.stdout)
    # every instance, once for the dashboard (sticky: a cookie of Caddy's), once for the rest
    assert dials == (upstreams or "127.0.0.1:8001 127.0.0.1:8002").split() * 2
    for fragment in ('"policy":"cookie"', '"policy":"least_conn"', '"uri":"/healthz"', '"max_header_bytes":64000',
                     '"max_size":4000000'):  # fmt: skip
        assert fragment in adapted.stdout
    validated = subprocess.run([tool("caddy"), "validate", *argv[2:]], capture_output=True, text=True, timeout=120,
                               env=env)  # fmt: skip
    assert validated.returncode == 0 and "Valid configuration" in validated.stdout + validated.stderr


def test_the_load_balancing_nginx_site_passes_nginx_t(tmp_path: Path) -> None:
    first, second = free_port(), free_port()
    config = nginx_config(tmp_path, 0, free_port(), free_port(), POSTGRESQL / "nginx.conf", {
        "server 127.0.0.1:8001 ": f"server 127.0.0.1:{first} ", "server 127.0.0.1:8002 ": f"server 127.0.0.1:{second} ",
    })  # fmt: skip
    done = run(tool("nginx"), "-t", "-c", str(config), "-p", str(tmp_path), "-e", "stderr")
    assert done.returncode == 0 and "test is successful" in done.stderr, done.stderr
    upstream = config.read_text().split("upstream clicktochat {", 1)[1].split("}", 1)[0]
    assert re.findall(r"^\s*server 127\.0\.0\.1:(\d+) ", upstream, re.M) == [str(first), str(second)]
    assert "least_conn;" in upstream and "proxy_next_upstream error timeout http_502 http_503;" in config.read_text()
    admin = config.read_text().split("upstream clicktochat_admin {", 1)[1].split("}", 1)[0]
    assert "ip_hash;" in admin
    assert "location /admin {\n        proxy_pass http://clicktochat_admin;" in config.read_text()
    broken = tmp_path / "broken.conf"
    broken.write_text(config.read_text().replace("least_conn;", "least_conn"))
    assert run(tool("nginx"), "-t", "-c", str(broken), "-p", str(tmp_path), "-e", "stderr").returncode == 1


def parse_yaml(text: str) -> Any:
    """The YAML a compose file uses (block maps and lists, flow lists, quoted and plain scalars),
    read with the standard library only: a structure test needs no PyYAML. Anything else (a tab,
    an anchor, a bad indent) is an AssertionError, so the example stays within what this reads."""
    lines = [(len(line) - len(line.lstrip(" ")), line.strip()) for line in text.splitlines()
             if line.strip() and not line.lstrip().startswith("#")]  # fmt: skip
    assert all("\t" not in line and not re.search(r"[&*]\w", line) for _, line in lines)

    def scalar(raw: str) -> Any:
        raw = re.sub(r"\s+#.*$", "", raw).strip()
        if raw.startswith("[") and raw.endswith("]"):
            return [scalar(part) for part in raw[1:-1].split(",") if part.strip()]
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
            return raw[1:-1]
        return {"true": True, "false": False}.get(raw, raw)

    def block(at: int, indent: int) -> tuple[Any, int]:
        if lines[at][1].startswith("- "):
            items: list[Any] = []
            while at < len(lines) and lines[at][0] == indent and lines[at][1].startswith("- "):
                item = lines[at][1][2:]
                if re.match(r"[\w.-]+:(\s|$)", item):  # a map as the item: its keys two columns in
                    lines[at] = (indent + 2, item)
                    value, at = block(at, indent + 2)
                    items.append(value)
                else:
                    items.append(scalar(item))
                    at += 1
            return items, at
        found: dict[str, Any] = {}
        while at < len(lines) and lines[at][0] == indent:
            key, sep, rest = lines[at][1].partition(":")
            assert sep and key and key not in found, f"line {lines[at][1]!r}"
            at += 1
            if rest.strip() and not rest.strip().startswith("#"):
                found[key] = scalar(rest)
            elif at < len(lines) and lines[at][0] > indent:
                found[key], at = block(at, lines[at][0])
            else:
                found[key] = None
        assert at == len(lines) or lines[at][0] < indent, f"bad indent at {lines[at][1]!r}"
        return found, at

    parsed, end = block(0, 0)
    assert end == len(lines)
    return parsed


def test_the_compose_file_runs_two_instances_on_postgresql_behind_caddy() -> None:
    compose = parse_yaml((POSTGRESQL / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "clicktochat-1", "clicktochat-2", "caddy"}
    database = services["postgres"]["environment"]
    instances = [services["clicktochat-1"], services["clicktochat-2"]]
    for instance in instances:
        url = instance["environment"]["CLICKTOCHAT_DB"]
        assert url == (f"postgresql://{database['POSTGRES_USER']}:${{POSTGRES_PASSWORD}}@postgres:5432/"
                       f"{database['POSTGRES_DB']}")  # fmt: skip
        assert instance["build"]["args"] == {"POSTGRESQL": "1"} and instance["build"]["context"] == "../.."
        assert (ROOT / "examples" / "postgresql" / instance["build"]["context"] / instance["build"]["dockerfile"]
                ).is_file()  # fmt: skip
        assert instance["depends_on"] == {"postgres": {"condition": "service_healthy"}}
        assert instance["networks"] == ["web", "db"]
        subnet = compose["networks"]["web"]["ipam"]["config"][0]["subnet"]
        assert instance["environment"]["CLICKTOCHAT_TRUSTED_PROXIES"] == subnet
    caddy = services["caddy"]
    assert caddy["environment"]["CLICKTOCHAT_UPSTREAMS"].split() == ["clicktochat-1:8000", "clicktochat-2:8000"]
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in caddy["volumes"] and caddy["networks"] == ["web"]
    assert services["postgres"]["networks"] == ["db"] and compose["networks"]["db"]["internal"] is True
    assert "pgdata" in compose["volumes"]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert 'pip install --no-cache-dir ".[postgresql]"' in dockerfile and "ARG POSTGRESQL=0" in dockerfile


def test_the_yaml_reader_would_see_a_mistake() -> None:
    with pytest.raises(AssertionError):
        parse_yaml("services:\n  a:\n    image: x\n   bad: indent\n")
    assert parse_yaml("a:\n  - 1\n  - '2'\nb: [x, y]  # c\nc:\n  - d: 1\n    e: 2\n") == {
        "a": ["1", "2"], "b": ["x", "y"], "c": [{"d": "1", "e": "2"}]}


def test_the_postgresql_examples_readme_names_its_files() -> None:
    readme = (POSTGRESQL / "README.md").read_text()
    for path in POSTGRESQL.iterdir():
        if path.name != "README.md":
            assert f"`{path.name}`" in readme, path.name
    assert "clicktochat db copy --from" in readme and "pg_dump" in readme and "pg_restore" in readme
