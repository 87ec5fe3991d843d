-- A store as the first release of vcpe-hub wrote it (schema version 1,
-- user_version left at 0): devices has no probe_addrs column. It builds
-- testdata/schema1.db (go test -run TestWriteSchema1Fixture -write-fixture).
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ccns (
	id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS instances (
	id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, slots INTEGER NOT NULL,
	route_quota INTEGER NOT NULL, ccn_id TEXT REFERENCES ccns(id),
	advertised TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
	sn TEXT PRIMARY KEY,
	instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
	slot INTEGER NOT NULL, secret BLOB NOT NULL, overlay TEXT NOT NULL UNIQUE,
	public_key TEXT, status TEXT NOT NULL, registered_seq INTEGER NOT NULL DEFAULT 0,
	registered_at INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS devices_public_key ON devices(public_key) WHERE public_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS credentials (
	hash BLOB PRIMARY KEY,
	sn TEXT NOT NULL REFERENCES devices(sn) ON DELETE CASCADE,
	state TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS credentials_sn ON credentials(sn);
CREATE TABLE IF NOT EXISTS audit (
	id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, who TEXT NOT NULL,
	action TEXT NOT NULL, target TEXT NOT NULL, result TEXT NOT NULL, detail TEXT NOT NULL);
INSERT INTO meta VALUES ('registered_seq', '1');
INSERT INTO ccns VALUES ('ccn-1', 'corp', 1767323045000000006);
INSERT INTO instances VALUES ('i-1', 'shop1', 2, 5, 'ccn-1', '198.19.1.0/24', 1767323045000000006);
INSERT INTO devices VALUES ('SN1', 'i-1', 0, x'7331', '198.18.64.2',
	'AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=', 'registered', 1, 1767323045000000006, 1767323045000000006);
INSERT INTO devices VALUES ('SN2', 'i-1', 1, x'7332', '198.18.64.3', NULL, 'unregistered', 0, 0, 1767323045000000006);
INSERT INTO credentials VALUES (x'0000000000000000000000000000000000000000000000000000000000000001', 'SN1', 'valid', 1767323045000000006);
INSERT INTO audit (at, who, action, target, result, detail) VALUES (1767323045000000006, 'root', 'instance.create', 'shop1', 'ok', '');
