-- One order as the API writes it, at the SQL level: a confirmado pedido and one
-- line, in one transaction (bench/filas_calientes.py runs it with pgbench).
-- Usuarios :umin..:umax and productos :pmin..:pmax exist (seed-demo).
\set u random(:umin, :umax)
\set p random(:pmin, :pmax)
\set m random(1, 3)
BEGIN;
INSERT INTO pedidos (usuario_id, estado, metodo_pago, total, direccion_entrega, telefono, notas, created_at, updated_at)
  VALUES (:u, 'confirmado', (ARRAY['efectivo', 'tarjeta', 'transferencia'])[:m], 10.50, 'Calle 1', '555', '', now(), now())
  RETURNING id AS pedido \gset
INSERT INTO detalles_pedido (pedido_id, producto_id, producto_nombre, cantidad, precio_unitario, subtotal)
  VALUES (:pedido, :p, 'bench', 1, 10.50, 10.50);
END;
