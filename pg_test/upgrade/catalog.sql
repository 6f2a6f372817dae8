-- Everything of the extension a user can see, one line per fact, sorted, so
-- an upgraded database and a fresh install can be compared with diff.
-- (Column order is left out: ALTER TABLE ADD COLUMN appends.)
WITH ns AS (SELECT 'atomic_inventory'::regnamespace AS oid)
SELECT line FROM (
    SELECT 'function ' || p.oid::regprocedure || ' acl=' || coalesce(p.proacl::text, '-')
           || ' comment=' || coalesce(obj_description(p.oid, 'pg_proc'), '-') || E'\n'
           || pg_get_functiondef(p.oid) AS line
      FROM pg_proc p, ns WHERE p.pronamespace = ns.oid
    UNION ALL
    SELECT 'relation ' || c.relname || ' kind=' || c.relkind::text || ' acl=' || coalesce(c.relacl::text, '-')
           || ' options=' || coalesce(c.reloptions::text, '-')
           || ' comment=' || coalesce(obj_description(c.oid, 'pg_class'), '-')
           || coalesce(' view=' || pg_get_viewdef(c.oid), '')
           || ' rls=' || c.relrowsecurity || '/' || c.relforcerowsecurity
      FROM pg_class c, ns WHERE c.relnamespace = ns.oid
    UNION ALL
    SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           || ' notnull=' || a.attnotnull || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
           || ' comment=' || coalesce(col_description(a.attrelid, a.attnum), '-')
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum, ns
     WHERE c.relnamespace = ns.oid AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(co.oid)
      FROM pg_constraint co, ns WHERE co.connamespace = ns.oid
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid)
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid, ns WHERE c.relnamespace = ns.oid
    UNION ALL
    SELECT 'trigger ' || pg_get_triggerdef(t.oid)
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid, ns
     WHERE c.relnamespace = ns.oid AND NOT t.tgisinternal
    UNION ALL
    SELECT 'policy ' || po.tablename || ' ' || po.policyname || ' ' || po.cmd || ' roles=' || po.roles::text
           || ' using=' || coalesce(po.qual, '-') || ' check=' || coalesce(po.with_check, '-')
      FROM pg_policies po WHERE po.schemaname = 'atomic_inventory'
    UNION ALL
    SELECT 'type ' || t.typname || ' ' || t.typtype::text
      FROM pg_type t, ns WHERE t.typnamespace = ns.oid
    UNION ALL
    SELECT 'dumped ' || c::regclass::text || ' where=' || coalesce(nullif(w, ''), '-')
      FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(c, w)
     WHERE e.extname = 'atomic_inventory'
    UNION ALL
    SELECT 'member ' || pg_describe_object(classid, objid, objsubid)
      FROM pg_depend
     WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
       AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'atomic_inventory')
) facts ORDER BY line;
