#!/bin/bash
# toolbox-job: jq + sqlite3 + coreutils + tar/gzip doing a small, self-checking job.
set -euo pipefail

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# 1. Generate 200 items as JSON.
jq -n '[range(1; 201) | {id: ., name: ("item-\(.)"), price: ((. * 37) % 101), tag: (if . % 3 == 0 then "fizz" else "plain" end)}]' > items.json

# 2. Load them into SQLite through CSV and aggregate there.
jq -r '.[] | [.id, .name, .price, .tag] | @csv' items.json > items.csv
sqlite3 shop.db <<'SQL'
CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, price INTEGER NOT NULL, tag TEXT NOT NULL);
.mode csv
.import items.csv items
CREATE INDEX items_tag ON items(tag);
SQL
sql_total=$(sqlite3 shop.db "SELECT sum(price) FROM items WHERE tag = 'fizz';")
sql_count=$(sqlite3 shop.db 'SELECT count(*) FROM items;')

# 3. The same aggregate with jq, and with coreutils/awk on the CSV.
jq_total=$(jq '[.[] | select(.tag == "fizz") | .price] | add' items.json)
csv_total=$(tr -d '"' < items.csv | awk -F, '$4 == "fizz" { s += $3 } END { print s }')
if [ "$sql_total" != "$jq_total" ] || [ "$sql_total" != "$csv_total" ] || [ "$sql_count" != 200 ]; then
	echo "toolbox-job: mismatch: sqlite=$sql_total jq=$jq_total csv=$csv_total count=$sql_count" >&2
	exit 1
fi

# 4. Cheapest five, a tarball, its checksum and an integrity check.
sort -t, -k3,3n -k1,1n items.csv | head -n 5 | cut -d, -f2 | tr -d '"' > cheapest.txt
sqlite3 shop.db .dump | gzip -9 > dump.sql.gz
tar -czf bundle.tar.gz items.json cheapest.txt dump.sql.gz
sha256sum bundle.tar.gz > bundle.sha256
sha256sum -c --quiet bundle.sha256
gzip -t bundle.tar.gz
[ "$(tar -tzf bundle.tar.gz | wc -l)" = 3 ]

echo "toolbox-job: ok: $sql_count items, fizz total $sql_total, cheapest $(paste -sd, cheapest.txt), $(stat -c %s bundle.tar.gz) bytes"
