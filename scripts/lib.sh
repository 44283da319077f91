# Shared by scripts/test and scripts/run (sourced, not run): install what a
# fresh Debian 12 machine lacks, and build ./memcached in the source tree.

# Debian packages the build and the test suite need.
MC_PACKAGES="build-essential autoconf automake libtool pkg-config libevent-dev perl
libmemcached-tools netcat-openbsd
python3-binary-memcached python3-pymemcache php-cli php-memcached"

mc_log() { printf '==> %s\n' "$*"; }

# Install the packages that are missing (nothing at all when every one is
# there).  Needs root, or sudo without a password.
mc_install_deps() {
    local missing="" pkg
    for pkg in $MC_PACKAGES; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
            missing="$missing $pkg"
    done
    if [ -z "$missing" ]; then
        mc_log "all build and test packages are installed"
        return 0
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || {
            echo "missing packages:$missing; run as root or install them first" >&2
            return 1
        }
        sudo="sudo -n"
    fi
    mc_log "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get -o DPkg::Lock::Timeout=300 update -q &&
        $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends $missing
}

# Generate the build system when it is missing or older than its inputs.
mc_autogen() {
    if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
        mc_log "autogen"
        ./autogen.sh
    fi
}

# Configure (warnings are errors) and build ./memcached in the source tree.
mc_build() {
    mc_autogen || return 1
    if [ ! -f config.status ] || ! grep -q -- '--enable-werror' config.status ||
       grep -q -- '--enable-sanitizers' config.status; then
        mc_log "configure --enable-werror"
        ./configure --enable-werror || return 1
    fi
    mc_log "make -j2"
    make -j2
}
