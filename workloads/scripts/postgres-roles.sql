-- The database's roles and who owns what, applied by db-roles.sh (the db-roles container of
-- postgres-0, on every start of the pod) as the superuser, over the server's local socket, in the
-- application's database. Whatever it finds (a new cluster, or one whose every object the
-- superuser owns: a stack deployed before the roles existed), it leaves:
--   the application role (APP_ROLE): logs in with its password, owns every schema of the
--     database but the system's and the extensions', and everything in them; may connect and
--     create temporary tables; nothing else: not a superuser, no CREATEDB, CREATEROLE,
--     REPLICATION or BYPASSRLS, a member of no role (so never of pg_execute_server_program,
--     pg_read_server_files or pg_write_server_files: no COPY ... PROGRAM, no server file).
--   the backup role (BACKUP_ROLE): pg_read_all_data, BYPASSRLS (pg_read_all_data alone is
--     still filtered by row-level security, and pg_dump refuses a table it filters) and EXECUTE
--     on pg_backup_start and pg_backup_stop: what pg_dump and the base backup need; connects.
--   the monitoring role (MONITOR_ROLE): pg_monitor, what the exporter reads; connects.
--   the superuser (PGUSER, the image's POSTGRES_USER): no password; pg_hba.conf lets it in only
--     on the local socket, inside the server's pod. The database stays its own.
-- Every statement sets a state or changes only what differs, so it runs any number of times; the
-- last warns, naming what, if anything is not as above.
-- psql variables from the environment (db-roles.sh checks that each is set and not empty):
\getenv app_role APP_ROLE
\getenv app_password APP_PASSWORD
\getenv backup_role BACKUP_ROLE
\getenv backup_password BACKUP_PASSWORD
\getenv monitor_role MONITOR_ROLE
\getenv monitor_password MONITOR_PASSWORD
\set ON_ERROR_STOP on

-- No statement of this session reaches the server's log, not even one that fails (it would
-- quote a password); a lock held by a client fails the run (db-roles.sh runs it again) rather
-- than queueing every later query behind an ALTER ... OWNER.
-- The application role owns schema public and may create functions there: with public on the
-- search path, a function of its own named like a built-in this script calls (unnest(text[]),
-- format, string_agg) would run as the superuser (CVE-2018-1058's pattern). Only the catalog.
SET search_path = pg_catalog, pg_temp;
SET log_statement = 'none';
SET log_min_error_statement = 'panic';
SET client_min_messages = 'warning';
SET lock_timeout = '30s';

SELECT format('CREATE ROLE %I', r)
  FROM unnest(ARRAY[:'app_role', :'backup_role', :'monitor_role']) AS r
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) \gexec

-- Terse errors while passwords are in the statements: psql would otherwise print the statement.
\set VERBOSITY terse
ALTER ROLE :"app_role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT
  CONNECTION LIMIT -1 VALID UNTIL 'infinity' PASSWORD :'app_password';
ALTER ROLE :"backup_role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION BYPASSRLS INHERIT
  CONNECTION LIMIT -1 VALID UNTIL 'infinity' PASSWORD :'backup_password';
ALTER ROLE :"monitor_role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT
  CONNECTION LIMIT -1 VALID UNTIL 'infinity' PASSWORD :'monitor_password';
\set VERBOSITY default
ALTER ROLE CURRENT_USER PASSWORD NULL;
-- The same for every later session of the superuser (an operator's psql, a restore): names of the
-- application's schemas must then be written out.
ALTER ROLE CURRENT_USER SET search_path = pg_catalog, pg_temp;

-- Memberships: exactly pg_read_all_data for the backup role and pg_monitor for the monitoring
-- role; any other, by whichever grantor, goes.
SELECT format('REVOKE %I FROM %I GRANTED BY %I', g.rolname, m.rolname, gr.rolname)
  FROM pg_auth_members a
  JOIN pg_roles g ON g.oid = a.roleid
  JOIN pg_roles m ON m.oid = a.member
  JOIN pg_roles gr ON gr.oid = a.grantor
 WHERE m.rolname IN (:'app_role', :'backup_role', :'monitor_role')
   AND (m.rolname, g.rolname) NOT IN ((:'backup_role', 'pg_read_all_data'), (:'monitor_role', 'pg_monitor')) \gexec
GRANT pg_read_all_data TO :"backup_role";
GRANT pg_monitor TO :"monitor_role";
GRANT EXECUTE ON FUNCTION pg_backup_start(text, boolean), pg_backup_stop(boolean) TO :"backup_role";

-- The database: only these roles may connect (pg_hba.conf lets only them in over the network),
-- the application may create temporary tables, nobody may create schemas.
REVOKE ALL ON DATABASE :"DBNAME" FROM PUBLIC, :"app_role", :"backup_role", :"monitor_role";
GRANT CONNECT, TEMPORARY ON DATABASE :"DBNAME" TO :"app_role";
GRANT CONNECT ON DATABASE :"DBNAME" TO :"backup_role", :"monitor_role";

-- The application's schemas: every schema but the system's and those an extension made.
SELECT format('ALTER SCHEMA %I OWNER TO %I', n.nspname, :'app_role')
  FROM pg_namespace n
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
   AND n.nspowner <> :'app_role'::regrole
   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e') \gexec

-- Their tables, views, materialized views, sequences, foreign tables and composite types. A
-- table takes its indexes and the sequences of its serial and identity columns with it, so those
-- are left to it; what an extension made stays the extension's.
SELECT format('ALTER %s %s OWNER TO %I',
         CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                        WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'c' THEN 'TYPE' ELSE 'TABLE' END,
         c.oid::regclass, :'app_role')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspowner = :'app_role'::regrole AND c.relowner <> :'app_role'::regrole
   AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
   AND NOT EXISTS (SELECT FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                      AND (d.deptype = 'e' OR (c.relkind = 'S' AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))))
 ORDER BY c.oid \gexec

-- Their functions, procedures and aggregates.
SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, :'app_role')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspowner = :'app_role'::regrole AND p.proowner <> :'app_role'::regrole
   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
 ORDER BY p.oid \gexec

-- Their enums, domains, range and multirange types (an array type follows its element type).
SELECT format('ALTER TYPE %s OWNER TO %I', t.oid::regtype, :'app_role')
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE n.nspowner = :'app_role'::regrole AND t.typowner <> :'app_role'::regrole
   AND t.typtype IN ('e', 'd', 'r', 'm')
   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
 ORDER BY t.oid \gexec

-- The check: a warning naming every role or object that is not as declared above. Not an error:
-- the container's readiness is PostgreSQL's pod's, and a surprise here (an object kind the
-- transfer does not know) must not take the database out of its Service.
SELECT format('DO $check$ BEGIN RAISE WARNING ''%%'', %L; END $check$', 'not as declared: ' || string_agg(problem, '; '))
  FROM (
    SELECT format('%s has %s', r.rolname, a.attr) AS problem
      FROM pg_roles r,
           LATERAL (VALUES ('SUPERUSER', r.rolsuper), ('CREATEDB', r.rolcreatedb), ('CREATEROLE', r.rolcreaterole),
                           ('REPLICATION', r.rolreplication), ('BYPASSRLS', r.rolbypassrls), ('NOLOGIN', NOT r.rolcanlogin)) AS a(attr, set)
     WHERE r.rolname IN (:'app_role', :'backup_role', :'monitor_role') AND a.set
       AND NOT (r.rolname = :'backup_role' AND a.attr = 'BYPASSRLS')
    UNION ALL
    SELECT format('%s lacks BYPASSRLS', rolname) FROM pg_roles WHERE rolname = :'backup_role' AND NOT rolbypassrls
    UNION ALL
    SELECT format('%s is a member of %s', m.rolname, g.rolname)
      FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
     WHERE m.rolname IN (:'app_role', :'backup_role', :'monitor_role')
       AND (m.rolname, g.rolname) NOT IN ((:'backup_role', 'pg_read_all_data'), (:'monitor_role', 'pg_monitor'))
    UNION ALL
    SELECT format('%s is not a member of %s', m, g)
      FROM (VALUES (:'backup_role', 'pg_read_all_data'), (:'monitor_role', 'pg_monitor')) AS w(m, g)
     WHERE NOT pg_has_role(m, g, 'USAGE')
    UNION ALL
    SELECT format('%s may not run %s', :'backup_role', f)
      FROM unnest(ARRAY['pg_backup_start(text,boolean)', 'pg_backup_stop(boolean)']) AS f
     WHERE NOT has_function_privilege(:'backup_role', f, 'EXECUTE')
    UNION ALL
    SELECT format('the superuser %s has a password', rolname) FROM pg_authid WHERE rolname = current_user AND rolpassword IS NOT NULL
    UNION ALL
    SELECT format('schema %I is owned by %s', n.nspname, n.nspowner::regrole)
      FROM pg_namespace n
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
       AND n.nspowner <> :'app_role'::regrole
       AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
    UNION ALL
    SELECT format('%s is owned by %s', c.oid::regclass, c.relowner::regrole)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspowner = :'app_role'::regrole AND c.relowner <> :'app_role'::regrole
       AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
       -- an index goes with its table: one of an extension's tables stays the extension's
       AND NOT EXISTS (SELECT FROM pg_index i JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = i.indrelid AND d.deptype = 'e'
                        WHERE i.indexrelid = c.oid)
    UNION ALL
    SELECT format('%s is owned by %s', p.oid::regprocedure, p.proowner::regrole)
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspowner = :'app_role'::regrole AND p.proowner <> :'app_role'::regrole
       AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    UNION ALL
    SELECT format('type %s is owned by %s', t.oid::regtype, t.typowner::regrole)
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE n.nspowner = :'app_role'::regrole AND t.typowner <> :'app_role'::regrole
       AND t.typtype IN ('e', 'd', 'r', 'm')
       AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
  ) AS problems
HAVING count(*) > 0 \gexec
