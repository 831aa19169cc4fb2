-- A SKETCH, not the schema: issue 20's next lever, applied by bench/crudos_como_deltas.py
-- to a throwaway copy of a head database. An order's own rows are its deltas: no
-- INSERT trigger on pedidos or detalles_pedido. Each row carries the id of the
-- transaction that inserted it (a column default), and a fold moves the rows of
-- finished transactions, [horizon, the oldest running xid), into the delta tables
-- and then folds as head does. A reader would add the rows at or past the horizon
-- (not built: this sketch is measured only for what an order costs).
-- What a real migration also needs: docs/issue-20-filas-como-deltas.md.

ALTER TABLE pedidos ADD COLUMN alta_xact xid8 NOT NULL DEFAULT '0';  -- existing rows: folded
ALTER TABLE pedidos ALTER COLUMN alta_xact SET DEFAULT pg_current_xact_id();
ALTER TABLE detalles_pedido ADD COLUMN alta_xact xid8 NOT NULL DEFAULT '0';
ALTER TABLE detalles_pedido ALTER COLUMN alta_xact SET DEFAULT pg_current_xact_id();
CREATE INDEX pedidos_alta_xact ON pedidos (alta_xact);
CREATE INDEX detalles_pedido_alta_xact ON detalles_pedido (alta_xact);

-- Rows with alta_xact below `xact` are in the rollups (or their delta tables).
CREATE TABLE estadisticas_horizonte (
    uno boolean PRIMARY KEY DEFAULT true CHECK (uno),
    xact xid8 NOT NULL
);
INSERT INTO estadisticas_horizonte (xact) VALUES (pg_snapshot_xmin(pg_current_snapshot()));

-- The INSERT triggers go: the row triggers and the bulk ones (whose transition
-- tables captured every inserted row).
DROP TRIGGER estadisticas_pedidos_ins ON pedidos;
DROP TRIGGER estadisticas_detalles_ins ON detalles_pedido;
DROP TRIGGER estadisticas_pedidos_masivo_ins ON pedidos;
DROP TRIGGER estadisticas_detalles_masivo_ins ON detalles_pedido;

-- The finished transactions' rows into the delta tables, the horizon past them.
CREATE FUNCTION estadisticas_traer_crudos() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    desde xid8;
    hasta xid8 := pg_snapshot_xmin(pg_current_snapshot());
BEGIN
    SELECT xact INTO desde FROM estadisticas_horizonte;
    INSERT INTO estadisticas_pedidos_delta
        (dia, estado, metodo_pago, usuario_id, pedidos, total_centimos)
    SELECT (created_at AT TIME ZONE 'UTC')::date, estado, metodo_pago, usuario_id, 1,
           (total * 100)::bigint
    FROM pedidos WHERE alta_xact >= desde AND alta_xact < hasta;
    INSERT INTO estadisticas_productos_vendidos_delta (producto_id, cantidad, ingresos_centimos)
    SELECT d.producto_id, d.cantidad, (d.subtotal * 100)::bigint
    FROM detalles_pedido d JOIN pedidos p ON p.id = d.pedido_id
    WHERE d.alta_xact >= desde AND d.alta_xact < hasta
      AND p.estado IN ('confirmado', 'en_preparacion', 'en_camino', 'entregado');
    UPDATE estadisticas_horizonte SET xact = hasta;
END $$;

-- One INSERT statement on pedidos in 256, on average, folds (head's tick, per statement).
CREATE FUNCTION estadisticas_tick() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('estadisticas.plegado', true) IS DISTINCT FROM 'on'
       AND current_setting('transaction_isolation') = 'read committed'
       AND pg_try_advisory_xact_lock(hashtext('estadisticas_plegar')) THEN
        PERFORM set_config('estadisticas.plegado', 'on', true);
        PERFORM estadisticas_traer_crudos();
        PERFORM estadisticas_plegar();
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER estadisticas_tick AFTER INSERT ON pedidos FOR EACH STATEMENT
    WHEN (random() < 1.0 / 256) EXECUTE FUNCTION estadisticas_tick();
