#!/bin/bash
# install-deps.sh - install the Debian 12 packages that building and testing caiofs need (run as root).
set -euo pipefail

packages=(
	build-essential autoconf automake libtool pkg-config
	liburing-dev libaio-dev
	libfuse3-dev fuse3
	python3 python3-dev python3-pytest python3-pytest-timeout python3-pytest-asyncio python3-uvloop
	python3-setuptools python3-pip
	fio stress-ng sqlite3 attr acl xfsprogs procps rsync git
	bindfs mergerfs
)
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${packages[@]}"
