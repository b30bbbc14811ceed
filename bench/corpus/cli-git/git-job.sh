#!/bin/sh
# git-job: a self-checking git workflow in a fresh repository.
set -eu

repo=$(mktemp -d)
trap 'rm -rf "$repo"' EXIT
cd "$repo"

git init -q -b main .
git config core.autocrlf false
printf 'line %s\n' 1 2 3 > notes.txt
git add notes.txt
git commit -q -m 'first'

git switch -q -c feature
printf 'feature work\n' > feature.txt
git add feature.txt
git commit -q -m 'feature'

git switch -q main
printf 'line 4\n' >> notes.txt
git commit -q -am 'second'
git merge -q --no-edit feature
git tag -a v1 -m 'version 1'

commits=$(git rev-list --count HEAD)
[ "$commits" = 4 ] || { echo "git-job: expected 4 commits, got $commits" >&2; exit 1; }
git log --oneline --graph > /dev/null
git diff --stat HEAD~2 HEAD > /dev/null
git gc -q
git fsck --no-progress --strict
files=$(git archive --format=tar v1 | tar -t | sort | paste -sd, -)
[ "$files" = "feature.txt,notes.txt" ] || { echo "git-job: archive has $files" >&2; exit 1; }

echo "git-job: ok: $commits commits, $(git describe) -> $(git rev-parse --short HEAD), archive $files"
