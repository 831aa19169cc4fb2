// Electro Isla operator console: plain JavaScript, no framework, no build step.
//
// The access token lives in this closure only (never in storage); the refresh
// token is the HttpOnly cookie the API sets on /api/auth/. Figures arrive on the
// statistics event stream (fetch + Bearer header); when the stream is refused,
// breaks or is held back by a buffering proxy, the page polls every 3 s with
// If-None-Match and keeps trying the stream every 30 s. Every figure is written
// as text (text nodes, a <wbr> after each underscore; never HTML) and carries
// data-field/data-value for scripts and tests.
"use strict";

(() => {
  const API = {
    login: "/api/auth/login/",
    refresh: "/api/auth/refresh/",
    logout: "/api/auth/logout/",
    stream: "/api/admin/estadisticas/stream/",
    stat: (name) => `/api/admin/estadisticas/${name}/`,
    cache: "/api/admin/cache/stats/",
    me: "/api/auth/me/",
    readyz: "/readyz",
    chart: (name) => `/admin/graficos/${name}.svg`,
  };
  const STATS = ["ventas", "usuarios", "productos", "reporte"];
  const STAFF = ["admin", "trabajador"];
  const CHARTS = {
    ventas: ["ventas_por_mes", "metodos_pago"],
    usuarios: ["usuarios_por_mes", "usuarios_por_rol"],
    productos: ["stock_por_categoria"],
    reporte: [],
  };
  const POLL_MS = 3000;
  const CACHE_POLL_MS = 5000;
  const STREAM_RETRY_MS = 30000;
  const RECONNECT_MS = [0, 500, 1500]; // after a stream that worked ends, before polling
  const FIRST_EVENT_MS = 4000; // no event this long after connecting: a buffering proxy
  const SILENCE_MS = 40000; // the server comments at least every 15 s
  const SESSION_HINT = "consola.sesion"; // a flag only: "try the refresh cookie on load"
  const REFRESH_LOCK = "electro-isla.refresh"; // one refresh at a time in this browser
  const REFRESH_RETRY_MS = 5000;
  const LOCK_PATIENCE_MS = 10000; // a login or logout waits this long for another tab's refresh
  // The stream's place in the per-usuario limit, kept across a reload of this tab
  // only (written when the page goes, read once when it comes back).
  const STREAM_LEASE = "consola.flujo";

  const $ = (id) => document.getElementById(id);
  const state = {
    token: null,
    user: null,
    generation: 0, // bumped on every start/stop: stale loops see it and end
    etags: {},
    lastEventId: null,
    streamLease: null, // X-Stream-Lease of the last stream: the next one replaces it
    timers: [],
    streamAbort: null,
    refreshing: null,
    refreshTimer: null,
    session: 0, // bumped when this tab's session ends: a refresh in flight then brings nothing back
    cacheStats: null, // the cache panel's last figures
    cacheGoneSince: null, // when the cache panel's reads began to fail
    refused: false, // logged out for want of staff rights: late answers are ignored
    replaced: false, // another tab's login took the refresh cookie: this one let go
    chartUrls: {},
  };

  // ---------- formatting ----------
  // Grouped from 4 digits on ("always"): es-ES alone writes 2696,79 above 27.013,26.
  const entero = new Intl.NumberFormat("es-ES", { useGrouping: "always" });
  const dinero = new Intl.NumberFormat("es-ES", {
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
    useGrouping: "always",
  });
  const fmt = {
    int: (v) => entero.format(v),
    money: (v) => `$${dinero.format(v)}`,
    pct: (v) => `${dinero.format(v)} %`,
    ratio: (v) => `${dinero.format(v * 100)} %`,
    text: (v) => (v === null || v === undefined ? "—" : String(v)),
    time: (v) => (v ? new Date(v).toLocaleString("es-ES") : "—"),
  };

  class ApiError extends Error {}
  class SessionEnded extends Error {}

  // ---------- messages ----------
  // tone "error" (red, an alert) or "info" (a status, such as "logged out").
  function showNotice(text, tone = "error") {
    const el = $("aviso");
    el.textContent = text;
    el.dataset.tone = tone;
    el.setAttribute("role", tone === "error" ? "alert" : "status");
    el.hidden = !text;
  }

  function describe(status, body) {
    if (body && typeof body.message === "string" && body.message) {
      return `${body.message} (HTTP ${status})`;
    }
    if (body && typeof body.mensaje === "string") return body.mensaje;
    return `El servidor respondió ${status}.`;
  }

  async function readJson(resp) {
    try {
      return await resp.json();
    } catch (_) {
      return null;
    }
  }

  // ---------- session ----------
  function claims(token) {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
  }

  function scheduleRefresh(wait) {
    clearTimeout(state.refreshTimer);
    if (!state.token || state.refused) return; // no session here to keep
    const exp = claims(state.token).exp * 1000;
    if (wait === undefined) wait = Math.max(5000, exp - Date.now() - 60000);
    state.refreshTimer = setTimeout(refreshOnSchedule, wait);
  }

  // A refused refresh ends the session now (the README's promise: a logout in another
  // tab cleared the cookie), not at the access token's expiry; one without an answer from
  // the app (the network, a 5xx) is tried again while the page waits for it.
  async function refreshOnSchedule() {
    const generation = state.generation;
    try {
      await refreshOnce(); // schedules the next one
    } catch (exc) {
      if (generation !== state.generation) return; // logged out or let go meanwhile: said already
      if (exc instanceof SessionEnded) sessionExpired();
      else scheduleRefresh(REFRESH_RETRY_MS);
    }
  }

  // A browser holds one refresh cookie and a refresh token works once: two tabs
  // refreshing at the same moment sent the same cookie, and the second use is reuse
  // (401, every refresh token of the usuario revoked: both tabs logged out). The Web
  // Locks API runs the tabs' refreshes one after the other, each with the cookie the
  // one before got back. Without it (not a secure context) a tab goes on alone.
  // `patience` (ms): how long to wait for the lock before going on alone anyway (a login
  // or logout is not kept waiting by another tab's refresh that hangs).
  function oneTabAtATime(task, patience) {
    if (!navigator.locks) return task();
    if (patience === undefined) return navigator.locks.request(REFRESH_LOCK, task);
    // An AbortController, not AbortSignal.timeout (missing in Safari 15), and "never
    // granted" rather than the error's name (older engines reject with AbortError).
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), patience);
    let granted = false;
    const held = () => {
      granted = true;
      clearTimeout(timer);
      return task();
    };
    return navigator.locks
      .request(REFRESH_LOCK, { signal: controller.signal }, held)
      .catch((exc) => (!granted && controller.signal.aborted ? task() : Promise.reject(exc)));
  }

  // This tab's session is over (logged out, refused, replaced, expired): a refresh still
  // in flight must bring no token back, nor set the timer again.
  function endSession() {
    state.session += 1;
    state.refreshing = null;
    clearTimeout(state.refreshTimer);
  }

  // One refresh at a time: concurrent 401s share it (a refresh token works once).
  function refreshOnce() {
    if (state.replaced) return Promise.reject(new SessionEnded("replaced by another login"));
    if (!state.refreshing) {
      const session = state.session;
      const refreshing = oneTabAtATime(async () => {
        // No timeout: a refresh abandoned after the server spent the cookie would leave the
        // spent one in the browser, and the next refresh would be reuse.
        const resp = await fetch(API.refresh, { method: "POST", credentials: "same-origin" });
        if (!resp.ok) {
          await resp.text().catch(() => ""); // read to the end: the request is complete (and timed)
          // 401 (or another 4xx): the cookie is spent, revoked or gone. A 5xx (a proxy's 502,
          // a 503 in a database outage), 408 or 429 says nothing of the session: tried again.
          const transient = resp.status >= 500 || [408, 429].includes(resp.status);
          if (!transient) throw new SessionEnded("refresh refused");
          throw new ApiError(describe(resp.status, null));
        }
        const body = await resp.json();
        if (session !== state.session) throw new SessionEnded("ended meanwhile");
        const c = claims(body.accessToken);
        if (state.user && String(c.sub) !== String(state.user.id)) {
          // One refresh cookie per browser: a login in another tab took it over.
          replaced(c.username);
          throw new SessionEnded("replaced by another login");
        }
        state.token = body.accessToken;
        scheduleRefresh();
        return state.token;
      }).finally(() => {
        if (state.refreshing === refreshing) state.refreshing = null;
      });
      state.refreshing = refreshing;
    }
    return state.refreshing;
  }

  // Not logged out (that would end the other tab's session too): this tab only lets go.
  function replaced(username) {
    endSession();
    stop();
    state.token = null;
    state.user = null;
    state.replaced = true;
    sessionStorage.removeItem(SESSION_HINT); // a reload asks for a login, not the other account
    showLogin(
      `Se inició sesión como «${username}» en otra pestaña de este navegador y esa sesión ` +
        "sustituye a esta (el navegador guarda una sola). Vuelve a iniciar sesión para seguir.",
    );
  }

  function sessionExpired() {
    if (state.replaced || state.refused) return; // said why already
    endSession();
    stop();
    state.token = null;
    sessionStorage.removeItem(SESSION_HINT);
    showLogin("Tu sesión expiró. Vuelve a iniciar sesión.");
  }

  // fetch with the bearer token; a 401 gets one refresh and one retry.
  async function api(path, options = {}, retried = false) {
    const session = state.session;
    const headers = { ...(options.headers || {}), Authorization: `Bearer ${state.token}` };
    const resp = await fetch(path, { ...options, headers, credentials: "same-origin", cache: "no-store" });
    // The session ended while this request was out (logged out, refused, replaced): it
    // meets a revoked token; no refresh (it would bring a token back), no "session
    // expired" over what was said.
    if (session !== state.session) throw new SessionEnded("ended meanwhile");
    if (resp.status === 401 && !retried) {
      try {
        await refreshOnce();
      } catch (exc) {
        if (session !== state.session) throw new SessionEnded("ended meanwhile");
        if (!(exc instanceof SessionEnded)) {
          // The app did not answer the refresh: offline for the caller, not logged out.
          scheduleRefresh(REFRESH_RETRY_MS);
          throw exc;
        }
        sessionExpired();
        throw new SessionEnded("session expired");
      }
      return api(path, options, true);
    }
    if (resp.status === 401) {
      sessionExpired();
      throw new SessionEnded("session expired");
    }
    return resp;
  }

  async function login(event) {
    event.preventDefault();
    const error = $("login-error");
    error.hidden = true;
    const button = $("login-entrar");
    button.disabled = true;
    endSession(); // a reload's refresh still waiting for another tab brings nothing back now
    try {
      // In turn with the other tabs' refreshes: one answered after this login would put
      // its own cookie back over the one this login sets.
      const resp = await oneTabAtATime(
        () =>
          fetch(API.login, {
            method: "POST",
            credentials: "same-origin",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ username: $("login-usuario").value, password: $("login-clave").value }),
          }),
        LOCK_PATIENCE_MS,
      );
      const body = await readJson(resp);
      if (!resp.ok) {
        let text = describe(resp.status, body);
        if (resp.status === 401) text = "Usuario o contraseña incorrectos.";
        if (resp.status === 429 && body) {
          text = `Demasiados intentos: espera ${body.tiempo_restante} s antes de volver a probar.`;
        }
        if (resp.status === 422 && body && body.errors) {
          text = Object.entries(body.errors).map(([k, v]) => `${k}: ${v.join(" ")}`).join(" · ");
        }
        throw new ApiError(text);
      }
      $("login-clave").value = "";
      state.token = body.accessToken;
      enter(body.user);
    } catch (exc) {
      error.textContent =
        exc instanceof ApiError ? exc.message : "No se pudo contactar con el servidor. Comprueba la conexión.";
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  // In turn with the other tabs' refreshes and logins: its answer clears the browser's
  // cookie, and after another tab's login it would clear that login's.
  function logoutRequest(token) {
    return oneTabAtATime(
      () =>
        fetch(API.logout, {
          method: "POST",
          credentials: "same-origin",
          headers: { Authorization: `Bearer ${token}` },
        }),
      LOCK_PATIENCE_MS,
    );
  }

  async function logout() {
    const token = state.token;
    endSession();
    stop();
    state.token = null;
    state.streamLease = null;
    sessionStorage.removeItem(SESSION_HINT);
    try {
      await logoutRequest(token);
    } catch (_) {
      // Logged out locally anyway; the token expires within 15 minutes.
    }
    showLogin("Sesión cerrada.", "info");
  }

  function enter(user) {
    state.user = user;
    showNotice("");
    $("acceso").hidden = true;
    if (!STAFF.includes(user.rol)) {
      // No figures at all for a non-staff login: drop the token and say why.
      refuse(
        `La cuenta «${user.username}» tiene el rol «${user.rol}»: esta consola es solo para el personal ` +
          "(admin o trabajador). Inicia sesión con una cuenta del personal.",
      );
      return;
    }
    state.refused = false;
    state.replaced = false;
    sessionStorage.setItem(SESSION_HINT, "1");
    $("usuario-nombre").textContent = `${user.username} (${user.rol})`;
    $("sesion").hidden = false;
    $("tablero").hidden = false;
    $("panel-cache").hidden = user.rol !== "admin";
    start(); // stops what ran before, the refresh timer too: schedule it after
    scheduleRefresh();
    $("principal").focus({ preventScroll: true }); // keyboard users go on from the dashboard, not from <body>
  }

  // Log out (the console is for staff only) and say why, instead of any figure.
  function refuse(text) {
    const token = state.token;
    endSession();
    state.token = null;
    state.refused = true;
    sessionStorage.removeItem(SESSION_HINT);
    logoutRequest(token).catch(() => {});
    $("sin-permiso-texto").textContent = text;
    $("sin-permiso").hidden = false;
    $("sin-permiso-volver").focus();
  }

  // A 403 on the statistics while the page is open: the usuario lost its staff rights
  // (its rol changed). The figures leave the screen with the session.
  function rightsLost() {
    if (state.refused) throw new SessionEnded("no longer staff"); // said already
    const name = state.user ? state.user.username : "";
    stop();
    clearFigures();
    showNotice("");
    $("tablero").hidden = true;
    $("sesion").hidden = true;
    refuse(
      `La cuenta «${name}» ya no es del personal (admin o trabajador): esta consola es solo ` +
        "para el personal. Inicia sesión con una cuenta del personal.",
    );
    throw new SessionEnded("no longer staff");
  }

  function showLogin(message, tone = "error") {
    $("tablero").hidden = true;
    $("sesion").hidden = true;
    $("sin-permiso").hidden = true;
    $("acceso").hidden = false;
    clearFigures();
    showNotice(message || "", tone);
    $("login-usuario").focus();
  }

  function clearFigures() {
    for (const el of document.querySelectorAll("[data-field]")) {
      el.removeAttribute("data-field");
      el.removeAttribute("data-value");
      el.textContent = "";
    }
    for (const id of ["reporte-cifras", "ventas-cifras", "usuarios-cifras", "productos-cifras", "cache-cifras"]) {
      $(id).replaceChildren();
    }
    for (const el of document.querySelectorAll(".tabla")) el.replaceChildren();
    for (const name of Object.keys(state.chartUrls)) {
      URL.revokeObjectURL(state.chartUrls[name]);
      $(`grafico-${name}`).removeAttribute("src");
    }
    state.chartUrls = {};
    state.etags = {};
    state.lastEventId = null;
    state.cacheStats = null;
    state.cacheGoneSince = null;
    cacheNote("");
  }

  // ---------- rendering ----------
  // Names such as energia_tecnologia may wrap after an underscore rather than mid-word.
  function wrappable(text) {
    const parts = String(text).split("_");
    return parts.flatMap((part, i) =>
      i < parts.length - 1 ? [`${part}_`, document.createElement("wbr")] : [part],
    );
  }

  function figure(el, field, value, text) {
    el.dataset.field = field;
    el.dataset.value = value === null || value === undefined ? "" : String(value);
    el.replaceChildren(...wrappable(text));
    return el;
  }

  // Key figures as a <dl>: [[label, key, formatter]], read from `doc` at `key`.
  function cifras(id, prefix, doc, items) {
    const dl = $(id);
    dl.replaceChildren(
      ...items.map(([label, key, format]) => {
        const box = document.createElement("div");
        const dt = document.createElement("dt");
        dt.textContent = label;
        const value = key.split(".").reduce((o, k) => o[k], doc);
        box.append(dt, figure(document.createElement("dd"), `${prefix}.${key}`, value, format(value)));
        return box;
      }),
    );
  }

  // A table of `rows`: columns [[header, key, formatter, numeric?]].
  function tabla(id, prefix, rows, columns, caption) {
    const table = document.createElement("table");
    if (caption) table.createCaption().textContent = caption;
    const head = table.createTHead().insertRow();
    for (const [header, , , numeric] of columns) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = header;
      if (numeric) th.className = "num";
      head.append(th);
    }
    const body = table.createTBody();
    if (!rows.length) {
      const cell = body.insertRow().insertCell();
      cell.colSpan = columns.length;
      cell.textContent = "Sin datos.";
    }
    rows.forEach((row, i) => {
      const tr = body.insertRow();
      for (const [, key, format, numeric] of columns) {
        const cell = figure(tr.insertCell(), `${prefix}.${i}.${key}`, row[key], format(row[key]));
        if (numeric) cell.className = "num";
      }
    });
    $(id).replaceChildren(table);
  }

  function generado(stat, field, value, id = `${stat}-generado`) {
    figure($(id), `${stat}.${field}`, value, fmt.time(value));
  }

  const RENDER = {
    reporte(doc) {
      cifras("reporte-cifras", "reporte", doc, [
        ["Usuarios", "resumen.total_usuarios", fmt.int],
        ["Productos activos", "resumen.total_productos", fmt.int],
        ["Pedidos", "resumen.total_pedidos", fmt.int],
        ["Ingresos totales", "resumen.ingresos_totales", fmt.money],
        ["Pedidos este mes", "resumen.pedidos_mes", fmt.int],
        ["Ingresos este mes", "resumen.ingresos_mes", fmt.money],
        ["Pendientes", "resumen.pedidos_pendientes", fmt.int],
        ["En proceso", "resumen.pedidos_en_proceso", fmt.int],
      ]);
      generado("reporte", "fecha_generacion", doc.fecha_generacion);
      generado("reporte", "generado_en", doc.generado_en, "reporte-calculado");
    },
    ventas(doc) {
      cifras("ventas-cifras", "ventas", doc, [["Ticket promedio", "ticket_promedio", fmt.money]]);
      tabla("tabla-ventas_por_mes", "ventas.ventas_por_mes", doc.ventas_por_mes, [
        ["Mes", "mes", fmt.text],
        ["Ventas", "total", fmt.money, true],
        ["Pedidos", "pedidos", fmt.int, true],
      ]);
      tabla("tabla-metodos_pago", "ventas.metodos_pago", doc.metodos_pago, [
        ["Método", "metodo_pago", fmt.text],
        ["Ventas", "count", fmt.int, true],
        ["Importe", "total", fmt.money, true],
      ]);
      tabla("tabla-productos_mas_vendidos", "ventas.productos_mas_vendidos", doc.productos_mas_vendidos, [
        ["#", "producto_id", fmt.text, true],
        ["Producto", "producto__nombre", fmt.text],
        ["Categoría", "producto__categoria", fmt.text],
        ["Unidades", "cantidad_vendida", fmt.int, true],
        ["Ingresos", "ingresos", fmt.money, true],
      ]);
      generado("ventas", "generado_en", doc.generado_en);
    },
    usuarios(doc) {
      cifras("usuarios-cifras", "usuarios", doc, [
        ["Compradores", "total_usuarios", fmt.int],
        ["Recurrentes", "usuarios_recurrentes", fmt.int],
        ["Retención", "tasa_retencion", fmt.pct],
      ]);
      tabla("tabla-usuarios_por_mes", "usuarios.usuarios_por_mes", doc.usuarios_por_mes, [
        ["Mes", "mes", fmt.text],
        ["Nuevos", "nuevos", fmt.int, true],
      ]);
      tabla("tabla-usuarios_por_rol", "usuarios.usuarios_por_rol", doc.usuarios_por_rol, [
        ["Rol", "rol", fmt.text],
        ["Usuarios", "count", fmt.int, true],
      ]);
      tabla("tabla-usuarios_mas_activos", "usuarios.usuarios_mas_activos", doc.usuarios_mas_activos, [
        ["#", "id", fmt.text, true],
        ["Usuario", "username", fmt.text],
        ["Nombre", "first_name", fmt.text],
        ["Apellido", "last_name", fmt.text],
        ["Pedidos", "pedidos_count", fmt.int, true],
      ]);
      generado("usuarios", "generado_en", doc.generado_en);
    },
    productos(doc) {
      cifras("productos-cifras", "productos", doc, [
        ["Valor del inventario", "valor_inventario", fmt.money],
        ["Sin stock", "productos_sin_stock", fmt.int],
      ]);
      tabla("tabla-productos_por_categoria", "productos.productos_por_categoria", doc.productos_por_categoria, [
        ["Categoría", "categoria", fmt.text],
        ["Productos", "count", fmt.int, true],
        ["Stock", "stock_total", fmt.int, true],
      ]);
      tabla("tabla-stock_bajo", "productos.stock_bajo", doc.stock_bajo, [
        ["#", "id", fmt.text, true],
        ["Producto", "nombre", fmt.text],
        ["Categoría", "categoria", fmt.text],
        ["Stock", "stock", fmt.int, true],
      ]);
      tabla("tabla-productos_mas_rentables", "productos.productos_mas_rentables", doc.productos_mas_rentables, [
        ["#", "id", fmt.text, true],
        ["Producto", "nombre", fmt.text],
        ["Precio", "precio", fmt.money, true],
        ["Stock", "stock", fmt.int, true],
        ["Valor", "valor_total", fmt.money, true],
      ]);
      generado("productos", "generado_en", doc.generado_en);
    },
  };

  function renderCache(stats, ready) {
    cifras("cache-cifras", "cache", { ...stats, readyz: ready }, [
      ["Estado (/readyz)", "readyz.cache", fmt.text],
      ["Base de datos", "readyz.database", fmt.text],
      ["Backend", "backend", fmt.text],
      ["Tasa de aciertos", "hit_ratio", fmt.ratio],
      ["Aciertos", "hits", fmt.int],
      ["Fallos", "misses", fmt.int],
      ["Cálculos", "fetches", fmt.int],
      ["Invalidaciones", "invalidations", fmt.int],
      ["Errores", "errors", fmt.int],
    ]);
    const rows = Object.entries(stats.families).map(([name, f]) => ({ name, ...f }));
    const columns = [
      ["Nombre", "name", fmt.text],
      ["Aciertos", "hits", fmt.int, true],
      ["Fallos", "misses", fmt.int, true],
      ["Cálculos", "fetches", fmt.int, true],
      // A soft hyphen: at 390 px the header may break there ("Invali-daciones"),
      // not push the table past its box.
      ["Invali\u00addaciones", "invalidations", fmt.int, true],
    ];
    // Keyed by name (cache.families.<name>.<counter>), as the API's document is.
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    for (const [header, , , numeric] of columns) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = header;
      if (numeric) th.className = "num";
      head.append(th);
    }
    const body = table.createTBody();
    for (const row of rows) {
      const tr = body.insertRow();
      for (const [, key, format, numeric] of columns) {
        const cell = tr.insertCell();
        if (key === "name") {
          cell.replaceChildren(...wrappable(row.name));
          continue;
        }
        figure(cell, `cache.families.${row.name}.${key}`, row[key], format(row[key]));
        if (numeric) cell.className = "num";
      }
    }
    $("tabla-cache-familias").replaceChildren(table);
  }

  async function loadChart(name, generation) {
    const resp = await api(API.chart(name));
    if (generation !== state.generation) return;
    if (resp.status === 403) rightsLost();
    if (!resp.ok) throw new ApiError(describe(resp.status, await readJson(resp)));
    const url = URL.createObjectURL(await resp.blob());
    const img = $(`grafico-${name}`);
    const old = state.chartUrls[name];
    state.chartUrls[name] = url;
    img.src = url;
    if (old) URL.revokeObjectURL(old);
    if ($("aviso").textContent.startsWith("No se pudo cargar el gráfico")) showNotice("");
  }

  function apply(stat, doc, generation) {
    if (generation !== state.generation || !RENDER[stat]) return;
    RENDER[stat](doc);
    $("actualizado").textContent = new Date().toLocaleTimeString("es-ES");
    $("actualizado").dateTime = new Date().toISOString();
    for (const name of CHARTS[stat]) {
      loadChart(name, generation).catch((exc) => {
        if (!(exc instanceof SessionEnded)) showNotice(`No se pudo cargar el gráfico ${name}: ${exc.message}`);
      });
    }
  }

  // ---------- live: stream, polling, status ----------
  const MODES = {
    live: "en vivo: flujo de eventos",
    polling: "consultando cada 3 s (flujo de eventos no disponible)",
    offline: "sin conexión con el servidor; reintentando",
  };

  function setMode(mode) {
    const el = $("estado");
    if (el.dataset.mode === mode) return;
    el.dataset.mode = mode;
    $("modo").textContent = mode;
    $("modo-texto").textContent = MODES[mode];
  }

  function later(fn, ms) {
    const t = setTimeout(fn, ms);
    state.timers.push(t);
    return t;
  }

  function stop() {
    state.generation += 1;
    for (const t of state.timers) {
      clearTimeout(t);
      clearInterval(t);
    }
    state.timers = [];
    clearTimeout(state.refreshTimer);
    if (state.streamAbort) state.streamAbort.abort();
    state.streamAbort = null;
    state.polling = false;
    setMode("offline");
  }

  function start() {
    stop();
    const generation = state.generation;
    connect(generation);
    if (state.user.rol === "admin") pollCache(generation);
  }

  // Reads the event stream until it ends; resolves to how long it delivered events (ms, 0: none).
  async function readStream(generation) {
    const controller = new AbortController();
    state.streamAbort = controller;
    let delivered = false;
    let since = 0;
    let silence = setTimeout(() => controller.abort(), FIRST_EVENT_MS);
    const alive = () => {
      clearTimeout(silence);
      silence = setTimeout(() => controller.abort(), SILENCE_MS);
    };
    try {
      const headers = { Accept: "text/event-stream" };
      if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
      // The previous stream (before a reload, or one that ended) stops counting against
      // the usuario's limit: four reloads had left the page refused for ~30 s.
      if (state.streamLease) headers["X-Stream-Replaces"] = state.streamLease;
      const resp = await api(API.stream, { headers, signal: controller.signal });
      if (resp.ok) state.streamLease = resp.headers.get("X-Stream-Lease");
      if (resp.status === 403) rightsLost();
      if (resp.status === 429) {
        // Per usuario (other tabs or computers) or the server full: its message says which.
        const why = describe(429, await readJson(resp));
        showNotice(`Flujo de eventos rechazado: ${why} Se consulta cada 3 s y se vuelve a probar el flujo cada 30 s.`, "info");
      } else if (resp.ok && $("aviso").textContent.startsWith("Flujo de eventos rechazado")) showNotice("");
      const type = resp.headers.get("Content-Type") || "";
      if (!resp.ok || !type.startsWith("text/event-stream")) {
        if (resp.body) resp.body.cancel().catch(() => {});
        return 0;
      }
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      let event = { name: "message", data: [], id: null };
      for (;;) {
        const { value, done } = await reader.read();
        if (done || generation !== state.generation) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, cut).replace(/\r$/, "");
          buffer = buffer.slice(cut + 1);
          if (line === "") {
            if (event.data.length && STATS.includes(event.name)) {
              if (event.id !== null) state.lastEventId = event.id;
              if (!delivered) since = Date.now();
              delivered = true;
              alive();
              stopPolling();
              setMode("live");
              apply(event.name, JSON.parse(event.data.join("\n")), generation);
            }
            event = { name: "message", data: [], id: null };
          } else if (line.startsWith(":")) {
            // A comment is a sign of life too: a resumed stream that lacks nothing
            // starts with ": up to date" and may send no event for a long while.
            if (!delivered) since = Date.now();
            delivered = true;
            alive();
            stopPolling();
            setMode("live");
          } else {
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "event") event.name = val;
            else if (field === "data") event.data.push(val);
            else if (field === "id") event.id = val;
          }
        }
      }
    } catch (exc) {
      if (exc instanceof SessionEnded) throw exc;
      // Aborted (silent or buffered), refused, or the connection broke: fall back.
    } finally {
      clearTimeout(silence);
    }
    return delivered ? Math.max(1, Date.now() - since) : 0;
  }

  async function connect(generation) {
    let retry = 0; // reconnections tried since a stream that worked ended
    while (generation === state.generation) {
      let lasted;
      try {
        lasted = await readStream(generation);
      } catch (_) {
        return; // the session ended: the login form is showing
      }
      if (generation !== state.generation) return;
      // A stream that worked and ended (its token expired, a worker restarted):
      // reconnect, still "live", at once and then after short pauses (a restarting
      // server's old workers end a new stream at once). Failing that, or one that
      // never worked: poll, and try the stream again later.
      if (lasted > 10000) retry = 0;
      if ((lasted || retry > 0) && retry < RECONNECT_MS.length) {
        await new Promise((resolve) => later(resolve, RECONNECT_MS[retry]));
        retry += 1;
        continue;
      }
      retry = 0;
      startPolling(generation);
      await new Promise((resolve) => later(resolve, STREAM_RETRY_MS));
    }
  }

  function stopPolling() {
    state.polling = false;
  }

  function startPolling(generation) {
    if (state.polling) return;
    state.polling = true;
    const id = (state.pollId = (state.pollId || 0) + 1);
    const current = () => state.polling && state.pollId === id && generation === state.generation;
    if ($("estado").dataset.mode !== "offline") setMode("polling");
    const round = async () => {
      if (!current()) return;
      await pollOnce(generation);
      if (current()) later(round, POLL_MS);
    };
    round();
  }

  async function pollOnce(generation) {
    let reached = 0;
    let failed = 0;
    await Promise.all(
      STATS.map(async (stat) => {
        try {
          const headers = state.etags[stat] ? { "If-None-Match": state.etags[stat] } : {};
          const resp = await api(API.stat(stat), { headers });
          if (resp.status === 403) rightsLost();
          // A proxy's 502/504 (the app behind it is down) is no answer of the app's.
          if ([502, 504].includes(resp.status)) return;
          if (resp.status === 304) {
            reached += 1;
            return;
          }
          const body = await readJson(resp);
          if (body === null) return; // not the app's JSON: a proxy's page
          reached += 1;
          if (!resp.ok) {
            failed += 1;
            showNotice(`Estadísticas de ${stat}: ${describe(resp.status, body)}`);
            return;
          }
          state.etags[stat] = resp.headers.get("ETag");
          apply(stat, body, generation);
        } catch (exc) {
          if (exc instanceof SessionEnded) throw exc;
        }
      }),
    ).catch(() => {});
    if (generation !== state.generation || !state.polling) return;
    if (reached) {
      setMode("polling");
      $("actualizado").textContent = new Date().toLocaleTimeString("es-ES");
      // Every statistic answered: what went wrong before (the server gone, one
      // statistic's error) is over. A proxy's 502 notice stayed after the app was back.
      const aviso = $("aviso").textContent;
      if (!failed && (aviso.startsWith("Sin conexión") || aviso.startsWith("Estadísticas de"))) {
        showNotice("");
      }
    } else {
      setMode("offline");
      showNotice("Sin conexión con el servidor: se reintenta cada 3 s.");
    }
  }

  function cacheNote(text) {
    $("cache-nota").textContent = text;
    $("cache-nota").hidden = !text;
  }

  async function pollCache(generation) {
    if (generation !== state.generation) return;
    try {
      let statsResp, readyResp, stats, ready;
      try {
        [statsResp, readyResp] = await Promise.all([api(API.cache), fetch(API.readyz, { cache: "no-store" })]);
        [stats, ready] = [await readJson(statsResp), await readJson(readyResp)];
        // A proxy's 502/504, or a body that is not the app's JSON: the app did not answer.
        if ([502, 504].includes(statsResp.status) || stats === null || ready === null) {
          throw new ApiError("no answer");
        }
      } catch (exc) {
        if (exc instanceof SessionEnded || generation !== state.generation) throw exc;
        // The panel says so instead of its last "ok", since the first failed read.
        state.cacheGoneSince = state.cacheGoneSince || new Date();
        const gone = "sin respuesta";
        if (state.cacheStats) renderCache(state.cacheStats, { database: gone, cache: gone });
        const since = state.cacheGoneSince.toLocaleTimeString("es-ES");
        cacheNote(`Sin respuesta del servidor desde las ${since}: cifras de antes.`);
        throw exc;
      }
      if (generation !== state.generation) return;
      state.cacheGoneSince = null;
      if (statsResp.status === 403) {
        // No longer admin: the page asks what it is now (an admin made mensajero
        // showed as "(trabajador)" until the statistics' 403 came).
        $("panel-cache").hidden = true;
        const me = await readJson(await api(API.me));
        if (generation !== state.generation) return;
        if (!me || !STAFF.includes(me.rol)) rightsLost();
        state.user.rol = me.rol;
        $("usuario-nombre").textContent = `${state.user.username} (${state.user.rol})`;
        return;
      }
      if (statsResp.ok) {
        state.cacheStats = stats;
        renderCache(stats, ready);
        cacheNote(
          stats.circuit_open || ready.cache !== "ok"
            ? "Redis no responde: las cifras son solo las del proceso del servidor que contestó; " +
                "las de los demás se suman cuando vuelva."
            : "",
        );
      } else showNotice(`Caché: ${describe(statsResp.status, stats)}`);
    } catch (exc) {
      if (exc instanceof SessionEnded) return;
    }
    later(() => pollCache(generation), CACHE_POLL_MS);
  }

  // ---------- wiring ----------
  document.addEventListener("DOMContentLoaded", async () => {
    $("login").addEventListener("submit", login);
    $("salir").addEventListener("click", logout);
    $("sin-permiso-volver").addEventListener("click", () => showLogin(""));
    state.streamLease = sessionStorage.getItem(STREAM_LEASE);
    sessionStorage.removeItem(STREAM_LEASE);
    window.addEventListener("pagehide", () => {
      if (state.streamLease) sessionStorage.setItem(STREAM_LEASE, state.streamLease);
    });
    if (sessionStorage.getItem(SESSION_HINT)) {
      // A reload: the access token was in memory only; the refresh cookie may still be good.
      const session = state.session;
      try {
        const token = await refreshOnce();
        const c = claims(token);
        enter({ id: Number(c.sub), username: c.username, rol: c.rol });
        return;
      } catch (exc) {
        if (session !== state.session) return; // logged in with the form meanwhile
        if (!(exc instanceof SessionEnded)) {
          // The app did not answer: the cookie may still be good, a later reload tries it again.
          showLogin(
            "No se pudo contactar con el servidor para recuperar la sesión. Recarga la página o inicia sesión.",
          );
          return;
        }
        sessionStorage.removeItem(SESSION_HINT);
      }
    }
    showLogin("");
  });
})();
