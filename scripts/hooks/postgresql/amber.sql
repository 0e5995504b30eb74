-- SPDX-License-Identifier: GPL-2.0
--
-- amber: crash-consistent backups of a running PostgreSQL cluster, asked for
-- from SQL. See docs/hooks.md.
--
--   SELECT * FROM amber.backup('pg');                  -- as the schedule says
--   SELECT * FROM amber.backup('pg', 'full');
--   SELECT * FROM amber.backup('pg', wait => false);   -- back at the barrier
--   SELECT * FROM amber.backup('pg', checkpoint_first => true);
--   SELECT * FROM amber.backups('pg');                 -- amberd's catalog
--
-- amberd cuts one commit barrier over every volume of the group (the data
-- directory, pg_wal, tablespaces) and streams the frozen image: every
-- transaction committed before the call is in the backup. No
-- pg_backup_start()/pg_backup_stop(), no backup_label, no WAL archive: a
-- restored copy starts like a server after a power cut and replays its WAL.
--
-- Install as a superuser, in each database to call it from:
--
--   psql -v ON_ERROR_STOP=1 -d postgres -f amber.sql
--
-- The functions run 'amber daemon' on the server's machine as the server's
-- OS user (COPY ... FROM PROGRAM), which reaches amberd on the trigger socket
-- of the group: amberd.conf needs 'trigger_user = postgres' in that [group].
-- They are SECURITY DEFINER: a superuser may let a backup role use them,
--   GRANT USAGE ON SCHEMA amber TO backup_role;
--   GRANT EXECUTE ON FUNCTION amber.backup(text, text, boolean, boolean) TO backup_role;
-- The command and socket directory are rows of amber.config, which only
-- the owner can change (never session settings, which any caller could set).

BEGIN;

CREATE SCHEMA IF NOT EXISTS amber;
REVOKE ALL ON SCHEMA amber FROM PUBLIC;

CREATE TABLE IF NOT EXISTS amber.config (
	key text PRIMARY KEY CHECK (key IN ('command', 'socket_dir')),
	value text NOT NULL CHECK (value ~ '^[A-Za-z0-9_./-]+$')
);
REVOKE ALL ON amber.config FROM PUBLIC;
INSERT INTO amber.config VALUES ('command', 'amber'), ('socket_dir', '/run/amber')
	ON CONFLICT (key) DO NOTHING;

-- amberd's answers, a session's rows at a time. The owner's, in the owner's
-- schema: never a table a caller could have created (a temporary table of
-- the caller's, with a trigger, would run the caller's code as the owner).
-- Unlogged: nothing of it is in a backup's image.
CREATE UNLOGGED TABLE IF NOT EXISTS amber.answer (
	pid integer NOT NULL DEFAULT pg_catalog.pg_backend_pid(),
	n bigserial,
	line text
);
REVOKE ALL ON amber.answer FROM PUBLIC;

-- Send one request on the group's trigger socket; the answer's lines, or an
-- error with amberd's message. Not for direct use (no EXECUTE for PUBLIC).
-- Call it on the primary: it writes its answer into amber.answer.
CREATE OR REPLACE FUNCTION amber._ask(grp text, request text, detach boolean)
RETURNS SETOF text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	v_cmd text;
	v_socket_dir text;
	v_command text;
	v_status text;
	v_answer text;
BEGIN
	IF grp IS NULL OR grp !~ '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$' THEN
		RAISE EXCEPTION 'amber: % is not a group name', quote_nullable(grp);
	END IF;
	IF request !~ '^[a-z]+( [A-Za-z0-9_.-]+)*$' THEN
		RAISE EXCEPTION 'amber: bad request %', quote_literal(request);
	END IF;
	SELECT c.value INTO v_command FROM amber.config c WHERE c.key = 'command';
	SELECT c.value INTO v_socket_dir FROM amber.config c WHERE c.key = 'socket_dir';
	-- Every piece was checked against [A-Za-z0-9_./-]: nothing for the shell.
	v_cmd := format('%s daemon --socket %s/%s.trigger %s%s 2>&1; echo "amber-status $?"',
			v_command, v_socket_dir, grp, request,
			CASE WHEN detach THEN ' --detach' ELSE '' END);
	DELETE FROM amber.answer WHERE pid = pg_backend_pid();
	EXECUTE format('COPY amber.answer (line) FROM PROGRAM %L'
		       ' WITH (FORMAT csv, DELIMITER %L, QUOTE %L)', v_cmd, E'\x1f', E'\x1e');
	SELECT a.line INTO v_status FROM amber.answer a WHERE a.pid = pg_backend_pid()
		ORDER BY a.n DESC LIMIT 1;
	SELECT string_agg(a.line, E'\n' ORDER BY a.n) INTO v_answer FROM amber.answer a
		WHERE a.pid = pg_backend_pid() AND a.line NOT LIKE 'amber-status %';
	DELETE FROM amber.answer WHERE pid = pg_backend_pid();
	IF v_status IS DISTINCT FROM 'amber-status 0' THEN
		RAISE EXCEPTION 'amber: %', coalesce(replace(v_answer, E'\n', ' / '),
						     'no answer from ' || v_cmd);
	END IF;
	RETURN QUERY SELECT * FROM regexp_split_to_table(v_answer, E'\n');
END
$fn$;
REVOKE ALL ON FUNCTION amber._ask(text, text, boolean) FROM PUBLIC;

-- A backup set of the group: kind 'full', 'incremental', or NULL for what
-- the group's full_every says. With wait => false it returns once the
-- barrier is cut (amberd finishes the set and logs it); with checkpoint_first =>
-- true a CHECKPOINT comes first, so a restore has less WAL to replay.
CREATE OR REPLACE FUNCTION amber.backup(grp text, kind text DEFAULT NULL,
					wait boolean DEFAULT true,
					checkpoint_first boolean DEFAULT false)
RETURNS SETOF text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
	IF kind IS NOT NULL AND kind NOT IN ('full', 'incremental') THEN
		RAISE EXCEPTION 'amber.backup: kind is full, incremental or NULL, not %',
			quote_literal(kind);
	END IF;
	IF checkpoint_first THEN
		CHECKPOINT;
	END IF;
	RETURN QUERY SELECT * FROM amber._ask(grp, 'backup ' || grp || coalesce(' ' || kind, ''),
					      NOT wait);
END
$fn$;
REVOKE ALL ON FUNCTION amber.backup(text, text, boolean, boolean) FROM PUBLIC;

-- amberd's catalog lines of the group: set, group, volume, kind, epoch,
-- parent, bytes, created, digest, file.
CREATE OR REPLACE FUNCTION amber.backups(grp text)
RETURNS SETOF text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
	RETURN QUERY SELECT substr(line, 8) FROM amber._ask(grp, 'list ' || grp, false) AS line
		WHERE line LIKE 'backup %';
END
$fn$;
REVOKE ALL ON FUNCTION amber.backups(text) FROM PUBLIC;

COMMIT;
