# test_selection.py - CAIO_IMPL, the default_implementation file and an unavailable io_uring.
import json
import os
import shutil

import caio
import pytest

from conftest import BACKENDS, BACKEND_NAMES, describe, run_python, subprocess_env

MODULE_OF = dict(BACKENDS)

# Prints what `import caio` chose and every warning the import gave.
REPORT = (
    "import json, warnings\n"
    "with warnings.catch_warnings(record=True) as caught:\n"
    "    warnings.simplefilter('always')\n"
    "    import caio\n"
    "print(json.dumps({\n"
    "    'doc': caio.Context.__doc__ or '',\n"
    "    'context': caio.Context.__module__,\n"
    "    'operation': caio.Operation.__module__,\n"
    "    'asyncio': caio.AsyncioContext.__module__,\n"
    "    'first': caio.variants[0].__name__,\n"
    "    'first_asyncio': caio.variants_asyncio[0].__name__,\n"
    "    'variants': [m.__name__ for m in caio.variants],\n"
    "    'chosen_asyncio': [m.__name__ for m in caio.variants_asyncio\n"
    "                       if m.AsyncioContext is caio.AsyncioContext],\n"
    "    'chosen': [m.__name__ for m in caio.variants if m.Context is caio.Context],\n"
    "    'file': caio.__file__,\n"
    "    'warnings': [(w.category.__name__, str(w.message)) for w in caught],\n"
    "}))\n"
)


def report(env):
    proc = run_python(REPORT, env=env)
    assert proc.returncode == 0, describe(proc)
    return json.loads(proc.stdout)


def available_names():
    return [name for name, module in BACKENDS if getattr(caio, module) is not None]


def assert_chose(result, name):
    module = "caio." + MODULE_OF[name]
    assert name in result["doc"], f"Context.__doc__ does not name {name}: {result['doc']!r}"
    assert result["chosen"] == [module], result
    assert result["chosen_asyncio"] == [module + "_asyncio"], result


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_caio_impl_selects_backend(name):
    if name not in available_names():
        pytest.skip(f"backend {name} unavailable here")
    result = report(subprocess_env(CAIO_IMPL=name))
    assert_chose(result, name)
    assert not [w for w in result["warnings"] if w[0] == "RuntimeWarning"], result["warnings"]


def test_no_selection_picks_first_available():
    result = report(subprocess_env())
    assert_chose(result, available_names()[0])
    assert not result["warnings"], result["warnings"]


@pytest.mark.parametrize("value", ["bogus", "URING!"])
def test_unknown_caio_impl_warns_and_keeps_automatic_choice(value):
    result = report(subprocess_env(CAIO_IMPL=value))
    assert_chose(result, available_names()[0])
    warnings = [msg for kind, msg in result["warnings"] if kind == "RuntimeWarning"]
    assert len(warnings) == 1, result["warnings"]
    for name in available_names():
        assert name in warnings[0], f"the warning does not name {name}: {warnings[0]!r}"
    assert value.lower() in warnings[0].lower(), f"the warning does not quote {value!r}"


def test_empty_caio_impl_is_unset():
    result = report(subprocess_env(CAIO_IMPL=""))
    assert_chose(result, available_names()[0])
    assert not result["warnings"], result["warnings"]


def private_package(tmp_path):
    """A private copy of the importable caio package tree, so a
    default_implementation file written next to its __init__.py does not
    touch the build tree."""
    source = os.path.dirname(os.path.dirname(os.path.realpath(caio.__file__)))
    target = tmp_path / "site"
    shutil.copytree(source, target, symlinks=False,
                    ignore=shutil.ignore_patterns("__pycache__", "*.o", "*.lo", ".deps", ".dirstamp"))
    path = [str(target)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                            if p and os.path.realpath(p) != source]
    return target / "caio", subprocess_env(PYTHONPATH=os.pathsep.join(path))


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_default_implementation_file(tmp_path, name):
    if name not in available_names():
        pytest.skip(f"backend {name} unavailable here")
    package, env = private_package(tmp_path)
    (package / "default_implementation").write_text(
        "# written by test_default_implementation_file\n\n" f"{name}\n")
    result = report(env)
    assert os.path.realpath(result["file"]).startswith(str(tmp_path)), result["file"]
    assert_chose(result, name)
    assert not [w for w in result["warnings"] if w[0] == "RuntimeWarning"], result["warnings"]


def test_caio_impl_overrides_default_implementation_file(tmp_path):
    names = available_names()
    if len(names) < 2:
        pytest.skip("needs two backends")
    package, env = private_package(tmp_path)
    (package / "default_implementation").write_text(names[0] + "\n")
    env["CAIO_IMPL"] = names[-1]
    assert_chose(report(env), names[-1])


def test_unknown_value_in_default_implementation_file_warns(tmp_path):
    package, env = private_package(tmp_path)
    (package / "default_implementation").write_text("# comment\nnonsense\n")
    result = report(env)
    assert_chose(result, available_names()[0])
    warnings = [msg for kind, msg in result["warnings"] if kind == "RuntimeWarning"]
    assert len(warnings) == 1, result["warnings"]
    assert "nonsense" in warnings[0]
    for name in available_names():
        assert name in warnings[0], warnings[0]


def test_build_tree_has_no_default_implementation_file():
    # The file would silently change every other test's backend.
    assert not os.path.exists(os.path.join(os.path.dirname(caio.__file__), "default_implementation"))


# --- a simulated unavailable io_uring (libcaio's probe test hook) -------------

PROBE_FAIL = {"CAIO_TEST_PROBE_FAIL": "uring:ENOSYS"}


def test_probe_failure_leaves_import_working():
    if "uring" not in available_names():
        pytest.skip("io_uring is not available even without the hook")
    code = (
        "import caio\n"
        "print('RESULT uring', caio.linux_uring, caio.linux_uring_asyncio)\n"
        "print('RESULT variants', ' '.join(m.__name__ for m in caio.variants))\n"
        "print('RESULT variants_asyncio', ' '.join(m.__name__ for m in caio.variants_asyncio))\n"
        "print('RESULT context', caio.Context.__module__)\n"
        "import asyncio, tempfile\n"
        "async def main():\n"
        "    with tempfile.TemporaryFile() as f:\n"
        "        async with caio.AsyncioContext() as ctx:\n"
        "            await ctx.write(b'still works', f.fileno(), 0)\n"
        "            return await ctx.read(32, f.fileno(), 0)\n"
        "print('RESULT io', asyncio.run(main()))\n"
    )
    proc = run_python(code, env=subprocess_env(**PROBE_FAIL))
    assert proc.returncode == 0, describe(proc)
    lines = dict(line[7:].split(" ", 1) for line in proc.stdout.splitlines() if line.startswith("RESULT "))
    assert lines["uring"] == "None None", describe(proc)
    assert "caio.linux_uring" not in lines["variants"].split()
    assert "caio.linux_uring_asyncio" not in lines["variants_asyncio"].split()
    rest = [n for n in available_names() if n != "uring"]
    assert lines["variants"].split() == ["caio." + MODULE_OF[n] for n in rest]
    assert lines["context"] != "caio.linux_uring"
    assert lines["io"] == "b'still works'"


@pytest.mark.parametrize("module", ["caio.linux_uring", "caio.linux_uring_asyncio"])
def test_probe_failure_import_error_explains(module):
    if "uring" not in available_names():
        pytest.skip("io_uring is not available even without the hook")
    code = (
        "import importlib, sys\n"
        "try:\n"
        "    importlib.import_module(sys.argv[1])\n"
        "    print('imported')\n"
        "except ImportError as e:\n"
        "    print('IMPORTERROR', e)\n"
    )
    proc = run_python(code, env=subprocess_env(**PROBE_FAIL), args=[module])
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout.startswith("IMPORTERROR"), describe(proc)
    message = proc.stdout.lower()
    assert "enosys" in message, message
    assert "seccomp" in message, message
    for word in ("docker", "podman", "kubernetes"):
        assert word in message, f"the ImportError does not say how to allow io_uring for {word}: {message}"


def test_probe_failure_with_caio_impl_uring_warns():
    if "uring" not in available_names():
        pytest.skip("io_uring is not available even without the hook")
    result = report(subprocess_env(CAIO_IMPL="uring", **PROBE_FAIL))
    rest = [n for n in available_names() if n != "uring"]
    assert_chose(result, rest[0])
    warnings = [msg for kind, msg in result["warnings"] if kind == "RuntimeWarning"]
    assert len(warnings) == 1, result["warnings"]
    for name in rest:
        assert name in warnings[0], warnings[0]


def test_python_backend_needs_no_compiled_part(tmp_path):
    # caio.python_aio works from a tree that holds only the .py files.
    package, env = private_package(tmp_path)
    for path in package.parent.rglob("*"):
        if path.suffix in (".so", ".pyd") or ".so." in path.name:
            path.unlink()
    code = (
        "import asyncio, tempfile\n"
        "from caio import python_aio_asyncio\n"
        "import caio\n"
        "assert caio.variants == (caio.python_aio,), caio.variants\n"
        "async def main():\n"
        "    with tempfile.TemporaryFile() as f:\n"
        "        async with python_aio_asyncio.AsyncioContext() as ctx:\n"
        "            await ctx.write(b'pure', f.fileno(), 0)\n"
        "            return await ctx.read(4, f.fileno(), 0)\n"
        "print(asyncio.run(main()))\n"
    )
    proc = run_python(code, env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == "b'pure'", describe(proc)


def test_linux_aio_probe_failure():
    if "linux" not in available_names():
        pytest.skip("Linux AIO is not available even without the hook")
    code = (
        "import caio\n"
        "print('RESULT variants', ' '.join(m.__name__ for m in caio.variants))\n"
        "print('RESULT linux', caio.linux_aio, caio.linux_aio_asyncio)\n"
        "try:\n"
        "    import caio.linux_aio\n"
        "    print('RESULT import worked')\n"
        "except ImportError as e:\n"
        "    print('RESULT import', e)\n"
    )
    proc = run_python(code, env=subprocess_env(CAIO_TEST_PROBE_FAIL="uring:ENOSYS,linux:ENOSYS"))
    assert proc.returncode == 0, describe(proc)
    lines = dict(line[7:].split(" ", 1) for line in proc.stdout.splitlines() if line.startswith("RESULT "))
    assert lines["variants"].split() == ["caio." + MODULE_OF[n] for n in available_names()
                                         if n not in ("uring", "linux")], describe(proc)
    assert lines["linux"] == "None None"
    assert "ENOSYS" in lines["import"], describe(proc)
