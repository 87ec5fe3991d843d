#!/bin/sh
# Prints the package version from git: the tag's version on a tag (v1.2.3
# gives 1.2.3), VERSION+git.N.SHA after one, and 0.0.0~git.N.SHA before
# the first tag (~ sorts before the release in both dpkg and rpm). A dirty
# tree adds .dirty.
set -e
n=$(git rev-list --count HEAD)
sha=$(git rev-parse --short=12 HEAD)
dirty=
git diff --quiet HEAD -- 2>/dev/null || dirty=.dirty
if tag=$(git describe --tags --match 'v[0-9]*' --abbrev=0 2>/dev/null); then
	base=${tag#v}
	since=$(git rev-list --count "$tag"..HEAD)
	if [ "$since" = 0 ] && [ -z "$dirty" ]; then
		echo "$base"
	else
		echo "$base+git.$since.$sha$dirty"
	fi
else
	echo "0.0.0~git.$n.$sha$dirty"
fi
