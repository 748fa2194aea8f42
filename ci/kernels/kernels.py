"""Finding, downloading and caching the Debian kernels of the matrix.

apt runs through a private APT_CONFIG whose sources are the Debian archive
URIs this machine's own apt sources use, so no mirror host is written
anywhere in the repository and /etc/apt is never changed. Only the vmlinuz
of each package is kept, in the cache directory, with a README there that
says which file is which kernel.
"""

import functools
import glob
import json
import os
import re
import subprocess
import tempfile

DEFAULT_CACHE = "/var/cache/procwatch-kernels"

# Each series: the suite that carries it and the package names that hold
# its vmlinuz. From 6.19 on the image is in linux-binary-*; the newest of
# those in trixie-backports is the "7" entry.
SERIES = {
    "5.10": ("bullseye-security", r"linux-image-5\.10\.0-\d+-cloud-amd64(-unsigned)?"),
    "6.1": ("bookworm-security", r"linux-image-6\.1\.0-\d+-cloud-amd64(-unsigned)?"),
    "6.12": ("trixie-security", r"linux-image-6\.12\.[0-9.]+\+deb13[0-9.]*-cloud-amd64(-unsigned)?"),
    "6.18": ("trixie-backports", r"linux-image-6\.18\.[0-9.]+\+deb13[0-9.]*-cloud-amd64(-unsigned)?"),
    "7": ("trixie-backports", r"linux-binary-(unsigned-)?7\.[0-9.]+\+deb13[0-9.]*-cloud-amd64"),
}
SECURITY_SUITES = ["bullseye-security", "bookworm-security", "trixie-security"]
MAIN_SUITES = ["trixie-backports"]
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def machine_archive_uris():
    """The Debian archive and security-archive URIs of this machine's apt
    sources (deb822 .sources files and one-line .list files)."""
    uris = []
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("URIs:"):
                    uris += line.split()[1:]
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                words = re.sub(r"\[[^]]*\]", " ", line).split()
                if len(words) >= 2 and words[0] == "deb":
                    uris.append(words[1])
    main = security = None
    for uri in uris:
        u = uri.rstrip("/")
        if security is None and u.endswith("/debian-security"):
            security = u
        elif main is None and u.endswith("/debian"):
            main = u
    if main is None or security is None:
        raise SystemExit(
            "matrix: cannot find both a Debian archive URI (…/debian) and a security URI "
            f"(…/debian-security) in this machine's apt sources; found {uris}"
        )
    return main, security


class Apt:
    """apt-get/apt-cache with a private configuration under DIR."""

    def __init__(self, root):
        self.root = root
        for d in ["sources.list.d", "state/lists/partial", "cache/archives/partial"]:
            os.makedirs(os.path.join(root, d), exist_ok=True)
        main, security = machine_archive_uris()
        stanza = "Types: deb\nURIs: {}\nSuites: {}\nComponents: main\nSigned-By: {}\n"
        with open(os.path.join(root, "sources.list.d", "matrix.sources"), "w") as f:
            f.write(stanza.format(security, " ".join(SECURITY_SUITES), KEYRING))
            f.write("\n")
            f.write(stanza.format(main, " ".join(MAIN_SUITES), KEYRING))
        open(os.path.join(root, "sources.list"), "w").close()
        open(os.path.join(root, "state", "status"), "a").close()
        self.conf = os.path.join(root, "apt.conf")
        with open(self.conf, "w") as f:
            f.write(
                f'Dir::Etc::SourceList "{root}/sources.list";\n'
                f'Dir::Etc::SourceParts "{root}/sources.list.d";\n'
                f'Dir::State "{root}/state";\n'
                f'Dir::State::status "{root}/state/status";\n'
                f'Dir::Cache "{root}/cache";\n'
                'APT::Architecture "amd64";\n'
                'APT::Architectures { "amd64"; };\n'
                'Acquire::Languages "none";\n'
            )

    def run(self, args, **kw):
        env = dict(os.environ, APT_CONFIG=self.conf, DEBIAN_FRONTEND="noninteractive")
        return subprocess.run(args, env=env, check=True, text=True, capture_output=True, **kw)

    def update(self):
        self.run(["apt-get", "update", "-q"])

    def newest(self, series):
        """(package, version) of the newest kernel of a series in its suite."""
        suite, pattern = SERIES[series]
        rx = re.compile(pattern + "$")
        names = self.run(["apt-cache", "pkgnames", "linux-"]).stdout.split()
        names = [n for n in names if rx.match(n)]
        if not names:
            raise LookupError(f"no package matches {pattern}")
        found = []
        for line in self.run(["apt-cache", "madison"] + names).stdout.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) == 3 and re.search(rf"\s{re.escape(suite)}/main\s", " " + parts[2] + " "):
                found.append((parts[0], parts[1]))
        if not found:
            raise LookupError(f"no package matching {pattern} in {suite}")

        def cmp(a, b):
            if a[1] == b[1]:
                # Same version: the signed image (shorter name) first.
                return len(b[0]) - len(a[0])
            r = subprocess.run(["dpkg", "--compare-versions", a[1], "gt", b[1]])
            return 1 if r.returncode == 0 else -1

        return max(found, key=functools.cmp_to_key(cmp))

    def download_vmlinuz(self, package, version, dest):
        """Downloads PACKAGE=VERSION and writes only its vmlinuz to DEST."""
        with tempfile.TemporaryDirectory(dir=self.root) as tmp:
            self.run(["apt-get", "download", "-q", f"{package}={version}"], cwd=tmp)
            (deb,) = glob.glob(os.path.join(tmp, "*.deb"))
            files = subprocess.run(
                ["dpkg-deb", "--fsys-tarfile", deb], check=True, capture_output=True
            ).stdout
            listing = subprocess.run(
                ["tar", "-t"], input=files, check=True, capture_output=True
            ).stdout.decode().split()
            # linux-image-* has /boot/vmlinuz-*; linux-binary-* (6.19 on)
            # has /usr/lib/modules/*/vmlinuz.
            rx = r"(^|/)boot/vmlinuz-[^/]+$|(^|/)lib/modules/[^/]+/vmlinuz$"
            kernels = [p for p in listing if re.search(rx, p)]
            if len(kernels) != 1:
                raise LookupError(f"{package}: expected one vmlinuz, found {kernels}")
            image = subprocess.run(
                ["tar", "-xO", kernels[0]], input=files, check=True, capture_output=True
            ).stdout
        # A name of its own, so two runs sharing the cache never mix files.
        part = f"{dest}.{os.getpid()}.part"
        with open(part, "wb") as f:
            f.write(image)
        os.replace(part, dest)


class Cache:
    """The cached kernels: DIR/vmlinuz-<package>_<version>, DIR/index.json
    (series -> package, version, suite, file) and a README saying the same."""

    def __init__(self, root):
        self.root = root
        os.makedirs(root, exist_ok=True)
        self.index_path = os.path.join(root, "index.json")
        try:
            with open(self.index_path) as f:
                self.index = json.load(f)
        except (OSError, ValueError):
            self.index = {}

    def file_for(self, package, version):
        return os.path.join(self.root, f"vmlinuz-{package}_{version}")

    def record(self, series, package, version):
        self.index[series] = {
            "package": package,
            "version": version,
            "suite": SERIES[series][0],
            "file": os.path.basename(self.file_for(package, version)),
        }
        part = f"{self.index_path}.{os.getpid()}.part"
        with open(part, "w") as f:
            json.dump(self.index, f, indent=1, sort_keys=True)
        os.replace(part, self.index_path)
        lines = [
            "Debian kernels cached by procwatch's ci/kernels/matrix.sh (only the vmlinuz of each",
            "package). Boot one with: ci/kernels/matrix.sh --kernel SERIES --binary PATH",
            "",
            "series  file                                                   package version (suite)",
        ]
        for s in sorted(self.index, key=lambda s: [int(x) for x in s.split(".")]):
            e = self.index[s]
            lines.append(f"{s:<7} {e['file']:<54} {e['package']} {e['version']} ({e['suite']})")
        part = os.path.join(self.root, f"README.{os.getpid()}.part")
        with open(part, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(part, os.path.join(self.root, "README"))


def fetch(series_list, cache_dir, log):
    """Resolves the newest kernel of each series (falling back to the cached
    one when the archive cannot be reached) and returns
    {series: (vmlinuz path, "package version")} and {series: error}."""
    cache = Cache(cache_dir)
    apt = None
    try:
        apt = Apt(os.path.join(cache_dir, "apt"))
        apt.update()
    except (subprocess.CalledProcessError, SystemExit, OSError) as e:
        log(f"matrix: apt unavailable, using cached kernels only: {getattr(e, 'stderr', e)}")
        apt = None
    kernels, errors = {}, {}
    for series in series_list:
        try:
            if apt is not None:
                package, version = apt.newest(series)
                path = cache.file_for(package, version)
                if not os.path.exists(path):
                    log(f"matrix: downloading {package} {version}")
                    apt.download_vmlinuz(package, version, path)
                cache.record(series, package, version)
            else:
                e = cache.index[series]
                package, version = e["package"], e["version"]
                path = os.path.join(cache_dir, e["file"])
                if not os.path.exists(path):
                    raise LookupError(f"{path} is missing")
            kernels[series] = (path, f"{package} {version}")
        except (LookupError, KeyError, ValueError, subprocess.CalledProcessError) as e:
            detail = getattr(e, "stderr", None) or str(e)
            errors[series] = f"cannot get the {series} kernel: {detail}".strip()
    return kernels, errors


def remove_stale(cache_dir):
    """Deletes cached images no longer named by the index (a newer package
    of their series replaced them). Files still being written by another
    run (*.part) are left alone."""
    cache = Cache(cache_dir)
    keep = {e["file"] for e in cache.index.values()}
    for path in glob.glob(os.path.join(cache_dir, "vmlinuz-*")):
        name = os.path.basename(path)
        if name not in keep and not name.endswith(".part"):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
