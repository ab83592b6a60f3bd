# Shared by scripts/up.sh and scripts/test.sh, which define say and die before sourcing it.
# shellcheck shell=bash

APT_UPDATED=0

# apt_install PACKAGE... installs Debian packages non-interactively, with sudo when not root.
apt_install() {
	command -v apt-get >/dev/null 2>&1 ||
		die "$* missing and apt-get is not available: install $* yourself"
	local sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		command -v sudo >/dev/null 2>&1 ||
			die "$* missing and this user cannot install packages: run 'apt-get install $*' as root"
		sudo=(sudo)
	fi
	if [[ $APT_UPDATED == 0 ]]; then
		say "apt-get update"
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q || die "apt-get update failed"
		APT_UPDATED=1
	fi
	say "installing $* with apt-get"
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" ||
		die "apt-get install $* failed"
}

# npm_ci DIR runs npm ci in DIR. It refuses when DIR/node_modules is a symbolic link: npm ci
# deletes node_modules before it installs, and through a link that empties the folder it points
# to, which every checkout linked to it shares.
npm_ci() {
	local dir=$1 target
	if [[ -L $dir/node_modules ]]; then
		target=$(readlink -f -- "$dir/node_modules")
		die "$dir/node_modules is a symbolic link to $target: npm ci would wipe that shared copy;" \
			"run npm ci in ${target%/node_modules} instead (or remove the link to have a copy of its own)"
	fi
	(cd "$dir" && npm ci --no-audit --no-fund) || die "npm ci in $dir failed"
}
