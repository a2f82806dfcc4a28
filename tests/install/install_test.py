#!/usr/bin/env python3
"""install_test.py: lcraft as an application gets it.

Installs the build into a temporary destdir (meson install --destdir), then,
through pkg-config alone, as an application would:
  - compiles each installed public header on its own (-std=c11 -pedantic -Werror);
  - builds bench/example_embed.c against the shared library, and again against
    the static one (pkg-config --libs --static: Requires.private complete), and
    runs both as a one-node cluster that commits;
  - checks that the shared library exports exactly the declarations the
    public headers mark LCR_API: all of them, and nothing else.

    install_test.py BUILD_DIR SOURCE_DIR [SANITIZERS]
SANITIZERS: the build's b_sanitize (e.g. address,undefined): the application
is built with them too, as it must be to link a sanitized library.
Exit 0 pass, 1 fail, 77 skipped (a tool missing; says which).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

PUBLIC = ["types.h", "core.h", "net.h", "lcraft.h"]
SAN = []  # the build's sanitizers, for the application too


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def run(cmd, env=None, timeout=120, cwd=None):
    p = subprocess.run(cmd, env=env, cwd=cwd, timeout=timeout, capture_output=True, text=True)
    if p.returncode != 0:
        fail(f"{' '.join(cmd)} exited {p.returncode}\n{p.stdout}{p.stderr}")
    return p.stdout


def main():
    global SAN
    build, src = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    if len(sys.argv) > 3 and sys.argv[3] not in ("", "none"):
        SAN = [f"-fsanitize={sys.argv[3]}"]
    for tool in ("meson", "pkg-config", "cc", "nm", "readelf"):
        if not shutil.which(tool):
            print(f"skipped: {tool} is not installed")
            sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="lcraft-install-")
    try:
        check(build, src, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("install test: ok")


def check(build, src, tmp):
    root = os.path.join(tmp, "root")
    run(["meson", "install", "-C", build, "--destdir", root, "--no-rebuild", "--quiet"],
        timeout=300)
    pcs = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f == "lcraft.pc"]
    if len(pcs) != 1:
        fail(f"expected one installed lcraft.pc, found {pcs}")
    # The destdir moved the tree under `root`: the .pc file says where it
    # would be installed, so a copy points its prefix there (liburing and the
    # system's other packages are found as usual).
    pcdir = os.path.join(tmp, "pkgconfig")
    os.mkdir(pcdir)
    with open(pcs[0]) as f:
        text = f.read()
    prefix = re.search(r"^prefix=(.*)$", text, re.M).group(1)
    with open(os.path.join(pcdir, "lcraft.pc"), "w") as f:
        f.write(text.replace(f"prefix={prefix}", f"prefix={root}{prefix}", 1))
    env = dict(os.environ, PKG_CONFIG_PATH=pcdir)
    pc = lambda *a: run(["pkg-config", *a, "lcraft"], env=env).split()
    cflags, libs, static_libs = pc("--cflags"), pc("--libs"), pc("--libs", "--static")

    # The installed headers: exactly the public ones, each self-contained.
    incdir = [f[2:] for f in cflags if f.startswith("-I") and f.startswith("-I" + root)]
    if len(incdir) != 1 or not os.path.isdir(os.path.join(incdir[0], "lcraft")):
        fail(f"pkg-config --cflags gives no include directory holding lcraft/: {cflags}")
    incdir = [os.path.join(incdir[0], "lcraft")]
    have = sorted(os.listdir(incdir[0]))
    if have != sorted(PUBLIC):
        fail(f"installed headers {have}, expected {sorted(PUBLIC)}")
    for h in PUBLIC:
        c = os.path.join(tmp, f"alone_{h}.c")
        with open(c, "w") as f:
            f.write(f"#include <lcraft/{h}>\nint lcr_header_alone_{h[:-2]};\n")
        run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-c", c, "-o",
             c + ".o", *cflags])
    print(f"headers: {len(PUBLIC)} installed, each compiles alone")

    # The example, linked as an application would, shared then static.
    example = os.path.join(src, "bench", "example_embed.c")
    libdir = [f[2:] for f in libs if f.startswith("-L" + root)]
    if "-llcraft" not in libs or not libdir:
        fail(f"pkg-config --libs: {libs}")
    shared_app = os.path.join(tmp, "app_shared")
    run(["cc", "-O2", "-Wall", "-Werror", *SAN, example, "-o", shared_app, *cflags, *libs,
         "-pthread"])
    static_app = os.path.join(tmp, "app_static")
    run(["cc", "-O2", "-Wall", "-Werror", *SAN, example, "-o", static_app, *cflags,
         *[("-l:liblcraft.a" if f == "-llcraft" else f) for f in static_libs]])
    needed = lambda exe: re.findall(r"\(NEEDED\).*\[(.*)\]", run(["readelf", "-d", exe]))
    if not any(n.startswith("liblcraft.so") for n in needed(shared_app)):
        fail("the shared build does not use liblcraft.so")
    if any(n.startswith("liblcraft") for n in needed(static_app)):
        fail("the static build still needs liblcraft.so")
    renv = dict(os.environ, LD_LIBRARY_PATH=libdir[0])
    for i, app in enumerate((shared_app, static_app)):
        data = os.path.join(tmp, f"data{i}")
        out = run([app, data, "1", f"1=127.0.0.1:{7921 + i}"], env=renv, timeout=60)
        print(f"{os.path.basename(app)}: {out.strip().splitlines()[-1] if out.strip() else ''}")

    # Exports: every LCR_API declaration, nothing else.
    decl = set()
    for h in PUBLIC:
        with open(os.path.join(incdir[0], h)) as f:
            text = f.read()
        decl |= set(re.findall(r"\bLCR_API\b[^;{]*?\b(lcr_\w+)\s*\(", text))
    so = [os.path.join(libdir[0], f) for f in os.listdir(libdir[0])
          if re.fullmatch(r"liblcraft\.so\.\d+\.\d+\.\d+", f)]
    if len(so) != 1:
        fail(f"no versioned liblcraft.so in {libdir[0]}")
    exported = set()
    for line in run(["nm", "-D", "--defined-only", so[0]]).splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBRVW":
            exported.add(parts[2])
    exported -= {"_init", "_fini", "_edata", "_end", "__bss_start"}
    if decl - exported:
        fail(f"declared LCR_API but not exported: {sorted(decl - exported)}")
    if exported - decl:
        fail(f"exported but not public: {sorted(exported - decl)}")
    print(f"exports: {len(exported)} symbols, exactly the public API")


if __name__ == "__main__":
    main()
