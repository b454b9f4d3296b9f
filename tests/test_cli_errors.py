"""Every user error of ``cm`` is one line on stderr with exit code 2, never a traceback.

Each subcommand (the dev tools' too) is run with bad arguments; a new subcommand without a
case here fails ``test_every_subcommand_has_a_bad_input_case``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from consumption_monitor.cli import build_parser, main


@pytest.fixture()
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "not-a-folder"
    path.write_text("x")
    return path


# (argv, text the line must contain); {file} is a path that is a plain file
CASES: list[tuple[list[str], str]] = [
    (["migrate", "--url", "garbage://x"], "仓库地址无法识别"),
    (["run", "--period", "2024-13"], "2024-13"),
    (["run", "--period", " 2024-1 "], "YYYY-MM"),
    (["run", "--feed", "nosuch", "--period", "2024-02"], "未知数据源 'nosuch'"),
    (["run", "--from", "2024-05", "--to", "2024-01"], "晚于"),
    (["run", "--feed", "retail_monthly"], "--period"),
    (["run", "--period", "2024-02", "--from", "2024-02", "--to", "2024-03"], "只能选一种"),
    (["run", "--period", "2024-02", "--url", "garbage://x"], "仓库地址无法识别"),
    (["snapshot", "--period", "2024-00"], "2024-00"),
    (
        ["snapshot", "--period", "2024-02", "--url", "postgresql://u:secret@127.0.0.1:1/x"],
        "无法连接仓库",
    ),
    (["report", "--period", "abc"], "abc"),
    (["report", "--period", "2024-02", "--out", "{file}", "--url", "{sqlite}"], "不是文件夹"),
    (["docs", "--out", "{file}/dictionary.md"], "不是文件夹"),
    (["analyst-role", "--url", "garbage://x"], "仓库地址无法识别"),
    (["catalog", "--bogus"], "--bogus"),
    (["summary", "--feed", "nosuch"], "nosuch"),
    (["summary", "--url", "sqlite:///{file}/x.db"], "不是文件夹"),
    (["digest", "--url", "postgresql://127.0.0.1:1/x"], "无法连接仓库"),
    (["quarantine", "--period", "2024-1"], "2024-1"),
    (["quarantine", "--feed", "  nosuch  "], "nosuch"),
    (["tradein-audit", "--enterprise", "123"], "18"),
    (["tradein-audit", "--year", "99"], "99"),
    (["feeds", "--nope"], "--nope"),
    (["ledger-templates", "--out", "{file}"], "不是文件夹"),
    (["status", "--today", "tomorrow"], "tomorrow"),
    (["partitions", "--drop", "--url", "postgresql://u:secret@127.0.0.1:1/x"], "无法连接仓库"),
    (["partitions", "--period", "2025-03"], "--period"),
    (["ledger-samples", "--out", "{file}", "--to", "2024-13"], "2024-13"),
    (["alerts", "preview", "--feed", "nosuch"], "nosuch"),
    (["alerts", "preview", "--period", "2025-2"], "2025-2"),
    (["feed-server", "--port", "http"], "http"),
    (["demo", "--recent", "some"], "--recent"),
    (["revisions", "--period", "2025-13"], "2025-13"),
    (["review", "show", "abcdefgh", "--url", "{sqlite}"], "不存在"),
    (["review", "explain", "abc", "--text", " ", "--by", "x", "--url", "{sqlite}"], "不能为空"),
    (["review", "list", "--status", "maybe"], "maybe"),
    (["nosuchcommand"], "nosuchcommand"),
]


def _fill(argv: list[str], a_file: Path, tmp_path: Path) -> list[str]:
    sqlite = f"sqlite:///{tmp_path / 'warehouse.db'}"
    return [a.replace("{file}", str(a_file)).replace("{sqlite}", sqlite) for a in argv]


@pytest.mark.parametrize(("argv", "expected"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_a_user_error_is_one_line_with_exit_code_2(
    argv: list[str], expected: str, a_file: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("CM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CM_WAREHOUSE_URL", raising=False)
    try:
        code = main(_fill(argv, a_file, tmp_path))
    except SystemExit as exc:  # argparse exits itself
        code = exc.code
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, out, err)
    assert len(lines) == 1, err
    assert "Traceback" not in err and out == ""
    assert expected in lines[0], lines[0]
    assert "secret" not in err  # a password in a URL is never shown


def test_every_subcommand_has_a_bad_input_case() -> None:
    parser = build_parser([])  # [] resolves the extension commands too
    commands = set(parser._subparsers._group_actions[0].choices)
    covered = {argv[0] for argv, _ in CASES}
    assert {"demo", "feed-server", "ledger-samples", "alerts"} <= commands
    assert commands <= covered, sorted(commands - covered)


def test_a_data_folder_that_is_a_file_is_one_line(a_file: Path, tmp_path: Path) -> None:
    env = {**os.environ, "CM_DATA_DIR": str(a_file)}
    env.pop("CM_WAREHOUSE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "consumption_monitor", "summary"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert "不是文件夹" in done.stderr


def test_a_missing_or_short_pii_key_stops_a_run_before_it_starts(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("CM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CM_WAREHOUSE_URL", f"sqlite:///{tmp_path / 'w.db'}")
    monkeypatch.delenv("CM_PII_KEY", raising=False)
    monkeypatch.delenv("AIRFLOW_HOME", raising=False)
    assert main(["run", "--feed", "tradein_transactions", "--period", "2024-03"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "CM_PII_KEY" in err
    monkeypatch.setenv("CM_PII_KEY", "short")
    assert main(["run", "--feed", "tradein_transactions", "--period", "2024-03"]) == 2
    assert "过短" in capsys.readouterr().err
    assert not (tmp_path / "data" / "archive").exists()  # nothing was extracted


def test_an_internal_error_is_one_line_and_v_shows_the_traceback(capsys, monkeypatch) -> None:
    import consumption_monitor.indicators.catalog as catalog

    def broken():
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(catalog, "load_catalog", broken)
    assert main(["catalog"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [err.strip()] and "RuntimeError: boom" in err
    with pytest.raises(RuntimeError):
        main(["-v", "catalog"])


@pytest.fixture()
def full_disk(tmp_path: Path):
    """A real 8 KiB file system (tmpfs): writes past it fail with ENOSPC."""
    mount = tmp_path / "full"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs for the full-disk case: {done.stderr!r}")
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_is_one_line_and_leaves_no_half_written_file(full_disk: Path, capsys) -> None:
    target = full_disk / "data-dictionary.md"
    assert main(["docs", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "磁盘空间不足" in err and str(target) in err
    assert list(full_disk.iterdir()) == []  # neither the file nor a partial one
