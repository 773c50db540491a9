// Tessera API docs: renders /openapi.json and sends "try it" requests to this server only.
// The DOM is built with createElement and textContent alone (never markup from strings), so
// nothing in the document can become script; the page's policy allows this origin only.
"use strict";

(function () {
  const METHODS = ["get", "post", "put", "patch", "delete"];
  let doc = null;
  let bearer = "";

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // Text with `code` spans, in paragraphs split on blank lines.
  function prose(text, tag) {
    const out = [];
    for (const para of String(text || "").split(/\n\s*\n/)) {
      if (!para.trim()) continue;
      const p = el(tag || "p");
      para.replace(/\n/g, " ").split("`").forEach((part, i) => {
        p.append(i % 2 === 1 ? el("code", { text: part }) : document.createTextNode(part));
      });
      out.push(p);
    }
    return out;
  }

  function refName(ref) {
    return String(ref).split("/").pop();
  }

  function resolve(schema) {
    let s = schema || {};
    for (let i = 0; s && s.$ref && i < 20; i++) {
      s = (doc.components && doc.components.schemas && doc.components.schemas[refName(s.$ref)]) || {};
    }
    return s || {};
  }

  // An object schema with allOf merged: {properties, required, additionalProperties}.
  function flatten(schema) {
    const s = resolve(schema);
    const out = { properties: {}, required: [], additionalProperties: s.additionalProperties };
    for (const part of s.allOf || []) {
      const f = flatten(part);
      Object.assign(out.properties, f.properties);
      out.required.push(...f.required);
    }
    Object.assign(out.properties, s.properties || {});
    out.required.push(...(s.required || []));
    return out;
  }

  function isObject(schema) {
    const s = resolve(schema);
    return Boolean(s.properties || s.allOf || s.type === "object");
  }

  function typeLabel(schema) {
    if (!schema) return "any";
    if (schema.$ref) return refName(schema.$ref);
    if (schema.oneOf || schema.anyOf) {
      return (schema.oneOf || schema.anyOf).map(typeLabel).join(" | ");
    }
    if (schema.allOf) return schema.allOf.map(typeLabel).join(" & ");
    let types = Array.isArray(schema.type) ? schema.type : [schema.type || "any"];
    types = types.map((t) => {
      if (t === "array") return typeLabel(schema.items) + "[]";
      if (t === "string" && schema.format) return "string (" + schema.format + ")";
      return t;
    });
    return types.join(" | ");
  }

  function constraints(schema) {
    const s = schema.$ref ? resolve(schema) : schema;
    const parts = [];
    if (s.minLength !== undefined) parts.push("min length " + s.minLength);
    if (s.maxLength !== undefined) parts.push("max length " + s.maxLength);
    if (s.minimum !== undefined) parts.push("≥ " + s.minimum);
    if (s.maximum !== undefined) parts.push("≤ " + s.maximum);
    if (s.pattern) parts.push("pattern " + s.pattern);
    if (s.default !== undefined) parts.push("default " + JSON.stringify(s.default));
    return parts.join(", ");
  }

  function nestedTarget(schema) {
    if (!schema) return null;
    for (const alt of schema.oneOf || schema.anyOf || []) {
      if (alt.type !== "null" && isObject(alt)) return alt;
    }
    if (schema.type === "array" && schema.items && isObject(schema.items)) return schema.items;
    if (isObject(schema) && (schema.$ref || schema.properties)) return schema;
    return null;
  }

  function schemaView(schema, depth) {
    depth = depth || 0;
    const s = resolve(schema);
    const alternatives = s.oneOf || s.anyOf;
    if (alternatives) {
      const box = el("div");
      box.append(el("p", { class: "hint", text: "One of:" }));
      for (const alt of alternatives) {
        box.append(el("p", { class: "type", text: typeLabel(alt) }));
        if (isObject(alt) && depth < 3) box.append(el("div", { class: "nested" }, schemaView(alt, depth + 1)));
      }
      return box;
    }
    if (!isObject(s)) {
      if (s.type === "array" && s.items && isObject(s.items) && depth < 3) {
        return el("div", {}, el("p", { class: "type", text: typeLabel(s) }), el("div", { class: "nested" }, schemaView(s.items, depth + 1)));
      }
      return el("p", { class: "type", text: typeLabel(s) });
    }
    const flat = flatten(s);
    const table = el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "field" }), el("th", { text: "type" }), el("th", { text: "rules" }), el("th", { text: "description" }))));
    const body = el("tbody");
    for (const [name, prop] of Object.entries(flat.properties)) {
      const required = flat.required.includes(name);
      const description = el("td", {}, prose(prop.description || (prop.$ref ? resolve(prop).description : "")));
      const nested = nestedTarget(prop);
      if (nested && depth < 3) description.append(el("div", { class: "nested" }, schemaView(nested, depth + 1)));
      body.append(
        el(
          "tr",
          {},
          el("td", { class: "name" }, name, required ? el("span", { class: "req", text: "required" }) : null),
          el("td", { class: "type", text: typeLabel(prop) }),
          el("td", { text: constraints(prop) }),
          description,
        ),
      );
    }
    table.append(body);
    const box = el("div", {}, table);
    if (flat.additionalProperties === false) box.append(el("p", { class: "hint", text: "Other fields are refused." }));
    return box;
  }

  // A plausible value for a schema, for the "try it" body.
  function sample(schema, depth) {
    depth = depth || 0;
    if (!schema || depth > 4) return null;
    if (schema.example !== undefined) return schema.example;
    if (schema.$ref) return sample(resolve(schema), depth + 1);
    const alternatives = schema.oneOf || schema.anyOf;
    if (alternatives) return sample(alternatives.find((a) => a.type !== "null") || alternatives[0], depth + 1);
    if (isObject(schema)) {
      const flat = flatten(schema);
      const out = {};
      for (const [name, prop] of Object.entries(flat.properties)) {
        if (flat.required.includes(name) || resolve(prop).example !== undefined || prop.example !== undefined) {
          out[name] = sample(prop, depth + 1);
        }
      }
      return out;
    }
    const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
    switch (type) {
      case "string":
        if (schema.format === "email") return "ann@example.com";
        if (schema.format === "date-time") return new Date().toISOString();
        if (schema.format === "uuid") return "00000000-0000-4000-8000-000000000000";
        return "string";
      case "integer":
      case "number":
        return schema.minimum !== undefined ? schema.minimum : 0;
      case "boolean":
        return false;
      case "array":
        return [sample(schema.items, depth + 1)];
      default:
        return null;
    }
  }

  function securityNames(op) {
    const names = [];
    for (const req of op.security || []) names.push(...Object.keys(req));
    return names;
  }

  function responseView(code, response) {
    const box = el("div");
    const cls = "status s" + String(code).charAt(0);
    box.append(el("h3", {}, el("span", { class: cls, text: code }), " ", prose(response.description || "", "span")));
    for (const [name, header] of Object.entries(response.headers || {})) {
      box.append(el("p", { class: "hint" }, "Header ", el("code", { text: name }), ": ", header.description || ""));
    }
    for (const [type, media] of Object.entries(response.content || {})) {
      box.append(el("p", { class: "hint" }, el("code", { text: type })));
      if (media.schema) box.append(schemaView(media.schema));
    }
    return box;
  }

  function tryIt(path, method, op) {
    const box = el("div", { class: "try" }, el("h3", { text: "Try it" }));
    const inputs = [];
    for (const param of op.parameters || []) {
      const input = el("input", { type: "text", placeholder: param.required ? "required" : "optional", "aria-label": param.name });
      inputs.push({ param, input });
      box.append(el("div", { class: "row" }, el("label", { text: param.name + " (" + param.in + ")" }), input));
    }
    let bodyInput = null;
    const content = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
    if (content) {
      const schema = content.schema && content.schema.oneOf ? content.schema.oneOf.find((a) => a.type !== "null") : content.schema;
      bodyInput = el("textarea", { spellcheck: "false", "aria-label": "request body" });
      bodyInput.value = JSON.stringify(sample(schema), null, 2);
      box.append(el("p", { class: "hint", text: "Body (application/json)" + (op.requestBody.required ? "" : ", may be left empty") }), bodyInput);
    }
    const needs = securityNames(op);
    if (needs.length) {
      box.append(el("p", { class: "hint", text: "Sends the bearer token from the top of the page (" + needs.join(", ") + ")." }));
    }
    const send = el("button", { type: "button", text: "Send" });
    const output = el("div", { "aria-live": "polite" });
    box.append(el("div", { class: "row" }, send), output);
    send.addEventListener("click", async () => {
      let url = path;
      const query = new URLSearchParams();
      for (const { param, input } of inputs) {
        if (!input.value) continue;
        if (param.in === "path") url = url.replace("{" + param.name + "}", encodeURIComponent(input.value));
        else if (param.in === "query") query.set(param.name, input.value);
      }
      if ([...query.keys()].length) url += "?" + query.toString();
      const headers = {};
      const init = { method: method.toUpperCase(), headers, credentials: "omit", redirect: "error", cache: "no-store" };
      if (bodyInput && bodyInput.value.trim()) {
        headers["Content-Type"] = "application/json";
        init.body = bodyInput.value;
      }
      if (needs.length && bearer) headers.Authorization = "Bearer " + bearer;
      output.replaceChildren(el("p", { class: "hint", text: "Sending…" }));
      try {
        const started = performance.now();
        const res = await fetch(url, init);
        const text = await res.text();
        const elapsed = Math.round(performance.now() - started);
        const head = el("p", { class: "result-head" }, el("span", { class: "status s" + String(res.status).charAt(0), text: String(res.status) }), " " + res.statusText + " · " + elapsed + " ms · " + (res.headers.get("content-type") || "no content type"));
        const parts = [head];
        const retry = res.headers.get("retry-after");
        if (retry) parts.push(el("p", { class: "hint", text: "Retry-After: " + retry + " s" }));
        let shown = text;
        let json = null;
        try {
          json = JSON.parse(text);
          shown = JSON.stringify(json, null, 2);
        } catch (_) {
          json = null;
        }
        parts.push(el("pre", { text: shown || "(empty body)" }));
        const token = json && (json.accessToken || json.twoFactorToken || json.enrollmentToken || (json.success && json.token));
        if (typeof token === "string") {
          const use = el("button", { type: "button", class: "secondary", text: "Use this token as the bearer" });
          use.addEventListener("click", () => setBearer(token));
          parts.push(use);
        }
        output.replaceChildren(...parts);
      } catch (err) {
        output.replaceChildren(el("p", { class: "status s5", text: "The request failed: " + err.message }));
      }
    });
    return box;
  }

  function operationView(path, method, op) {
    const id = "op-" + (op.operationId || method + path).replace(/[^A-Za-z0-9_-]/g, "-");
    const details = el("details", { class: "op", id });
    details.append(
      el("summary", {}, el("span", { class: "method " + method, text: method.toUpperCase() }), el("span", { class: "path", text: path }), el("span", { class: "summary" }, prose(op.summary || "", "span"))),
    );
    const body = el("div", { class: "op-body" });
    if (op.description) body.append(...prose(op.description));
    const needs = securityNames(op);
    body.append(el("p", { class: "hint", text: needs.length ? "Authorization: Bearer (" + needs.join(", ") + ")" : "No token needed." }));
    if ((op.parameters || []).length) {
      body.append(el("h3", { text: "Parameters" }));
      const table = el("table", {}, el("tr", {}, el("th", { text: "name" }), el("th", { text: "in" }), el("th", { text: "type" }), el("th", { text: "rules" }), el("th", { text: "description" })));
      for (const p of op.parameters) {
        table.append(el("tr", {}, el("td", { class: "name" }, p.name, p.required ? el("span", { class: "req", text: "required" }) : null), el("td", { text: p.in }), el("td", { class: "type", text: typeLabel(p.schema) }), el("td", { text: constraints(p.schema || {}) }), el("td", {}, prose(p.description || ""))));
      }
      body.append(table);
    }
    if (op.requestBody) {
      body.append(el("h3", { text: "Request body" + (op.requestBody.required ? "" : " (optional)") }));
      if (op.requestBody.description) body.append(...prose(op.requestBody.description));
      for (const [type, media] of Object.entries(op.requestBody.content || {})) {
        body.append(el("p", { class: "hint" }, el("code", { text: type })));
        if (media.schema) body.append(schemaView(media.schema));
      }
    }
    body.append(el("h3", { text: "Responses" }));
    for (const [code, response] of Object.entries(op.responses || {})) body.append(responseView(code, response));
    body.append(tryIt(path, method, op));
    details.append(body);
    return details;
  }

  function setBearer(token) {
    bearer = token;
    document.getElementById("bearer").value = token;
  }

  function render(openapi) {
    doc = openapi;
    const info = doc.info || {};
    document.getElementById("title").textContent = (info.title || "API") + " API";
    document.title = (info.title || "API") + " API documentation";
    const meta = document.getElementById("meta");
    meta.replaceChildren("Version " + (info.version || "?") + " · OpenAPI " + doc.openapi + " · ", el("a", { href: "/openapi.json", text: "/openapi.json" }));
    document.getElementById("intro").replaceChildren(...prose(info.description || ""));

    const byTag = new Map();
    for (const tag of doc.tags || []) byTag.set(tag.name, { tag, ops: [] });
    for (const [path, item] of Object.entries(doc.paths || {})) {
      for (const method of METHODS) {
        const op = item[method];
        if (!op) continue;
        const name = (op.tags && op.tags[0]) || "other";
        if (!byTag.has(name)) byTag.set(name, { tag: { name }, ops: [] });
        byTag.get(name).ops.push({ path, method, op });
      }
    }
    const nav = document.getElementById("nav");
    const main = document.getElementById("operations");
    nav.replaceChildren();
    main.replaceChildren();
    for (const { tag, ops } of byTag.values()) {
      if (!ops.length) continue;
      nav.append(el("h2", { text: tag.name }));
      const section = el("section", { class: "tag" }, el("h2", { text: tag.name }), prose(tag.description || ""));
      for (const { path, method, op } of ops) {
        const view = operationView(path, method, op);
        section.append(view);
        const link = el("a", { href: "#" + view.id }, el("span", { class: "method " + method, text: method.toUpperCase() }), el("span", { text: path }));
        link.addEventListener("click", () => {
          view.open = true;
        });
        nav.append(link);
      }
      main.append(section);
    }
    const target = location.hash && document.getElementById(location.hash.slice(1));
    if (target && target.tagName === "DETAILS") target.open = true;
  }

  document.addEventListener("DOMContentLoaded", () => {
    const input = document.getElementById("bearer");
    input.addEventListener("input", () => {
      bearer = input.value.trim();
    });
    document.getElementById("bearer-clear").addEventListener("click", () => setBearer(""));
    document.getElementById("auth-form").addEventListener("submit", (e) => e.preventDefault());
    fetch("/openapi.json", { credentials: "omit", cache: "no-store" })
      .then((res) => {
        if (!res.ok) throw new Error("status " + res.status);
        return res.json();
      })
      .then(render)
      .catch((err) => {
        document.getElementById("meta").textContent = "Could not read /openapi.json: " + err.message;
      });
  });
})();
