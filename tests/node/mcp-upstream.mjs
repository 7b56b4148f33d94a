// A real upstream MCP server (official TypeScript SDK, Streamable HTTP, stateful) for the
// adp-e2e tests, served over HTTPS so the proxy's upstream TLS path is exercised.
//
//   node mcp-upstream.mjs --cert cert.pem --key key.pem [--port 0] [--exit-with-stdin]
//
// Paths may also come from MCP_UPSTREAM_CERT / MCP_UPSTREAM_KEY and the port from
// MCP_UPSTREAM_PORT. Binds 127.0.0.1 only. Once listening it prints exactly one JSON line
// to stdout: {"ready":true,"url":"https://127.0.0.1:PORT/mcp","port":PORT}.
//
// MCP endpoint /mcp: one McpServer + transport per session (Mcp-Session-Id, random UUID).
// It never checks Authorization: tests assert what arrived instead. Tools:
//   echo    {text}  → text content with `text`, structuredContent {text}
//   whoami  {}      → the credential-bearing headers of that very request (authorization
//                     and every x-* header) as JSON text, and as structuredContent {headers}
//
// Test-only endpoints (same port, no auth, not recorded themselves):
//   GET  /__test/requests   every other HTTP request so far, oldest first:
//                           [{method, path, headers (lower-case names), rpc_methods, body}]
//                           rpc_methods lists the JSON-RPC `method` of each request or
//                           notification in a POST body; body is the parsed JSON or null
//   POST /__test/reset      forget the recorded requests
//   GET  /__test/sse-streams {open, closed}: legacy SSE event streams (GET /sse) open now,
//                           and closed so far (by either side), so a test can see the
//                           proxy hang one up
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { parseArgs } from 'node:util';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const MCP_PATH = '/mcp';
// the deprecated 2024-11-05 HTTP+SSE transport: GET the stream, POST to the endpoint it names
const SSE_PATH = '/sse';
const SSE_MESSAGES_PATH = '/messages';
const MAX_BODY_BYTES = 4 * 1024 * 1024;

const { values: args } = parseArgs({
  options: {
    cert: { type: 'string' },
    key: { type: 'string' },
    port: { type: 'string' },
    'exit-with-stdin': { type: 'boolean' },
  },
});
const certPath = args.cert ?? process.env.MCP_UPSTREAM_CERT;
const keyPath = args.key ?? process.env.MCP_UPSTREAM_KEY;
if (!certPath || !keyPath) {
  console.error('mcp-upstream: --cert and --key (or MCP_UPSTREAM_CERT/KEY) are required');
  process.exit(2);
}
const port = Number(args.port ?? process.env.MCP_UPSTREAM_PORT ?? 0);

// ---- request log ------------------------------------------------------------------

let requests = [];

function lowerCaseHeaders(req) {
  const headers = {};
  for (const [name, value] of Object.entries(req.headers)) {
    headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return headers;
}

function rpcMethods(body) {
  const messages = Array.isArray(body) ? body : [body];
  return messages
    .filter((message) => message && typeof message.method === 'string')
    .map((message) => message.method);
}

// ---- MCP --------------------------------------------------------------------------

// A header is reported by whoami when it can carry a credential the proxy injected.
function credentialHeaders(headers) {
  const picked = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    const lower = name.toLowerCase();
    if (lower === 'authorization' || lower.startsWith('x-')) picked[lower] = value;
  }
  return picked;
}

function buildServer() {
  const server = new McpServer({ name: 'adp-e2e-upstream', version: '1.0.0' });
  server.registerTool(
    'echo',
    {
      description: 'Echoes its text argument',
      inputSchema: { text: z.string() },
    },
    async ({ text }) => ({
      content: [{ type: 'text', text }],
      structuredContent: { text },
    }),
  );
  server.registerTool(
    'whoami',
    { description: 'Reports the credential headers this call arrived with' },
    async (extra) => {
      const headers = credentialHeaders(extra.requestInfo?.headers);
      return {
        content: [{ type: 'text', text: JSON.stringify(headers) }],
        structuredContent: { headers },
      };
    },
  );
  return server;
}

const transports = new Map();
const sseTransports = new Map();
const sseStreams = { open: 0, closed: 0 };

async function newSessionTransport() {
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    onsessioninitialized: (sessionId) => {
      transports.set(sessionId, transport);
    },
  });
  transport.onclose = () => {
    if (transport.sessionId) transports.delete(transport.sessionId);
  };
  await buildServer().connect(transport);
  return transport;
}

function jsonRpcError(res, status, code, message) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

async function handleMcp(req, res, body) {
  const sessionId = req.headers['mcp-session-id'];
  if (sessionId) {
    const transport = transports.get(sessionId);
    if (!transport) return jsonRpcError(res, 404, -32001, 'Session not found');
    return transport.handleRequest(req, res, body);
  }
  if (req.method === 'POST' && isInitializeRequest(body)) {
    const transport = await newSessionTransport();
    return transport.handleRequest(req, res, body);
  }
  return jsonRpcError(res, 400, -32000, 'Bad Request: No valid session ID provided');
}

// ---- HTTP -------------------------------------------------------------------------

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

async function handle(req, res) {
  const path = new URL(req.url, 'https://127.0.0.1').pathname;
  if (path === '/__test/requests' && req.method === 'GET') return sendJson(res, 200, requests);
  if (path === '/__test/reset' && req.method === 'POST') {
    requests = [];
    return sendJson(res, 200, {});
  }
  if (path === '/__test/sse-streams' && req.method === 'GET') return sendJson(res, 200, sseStreams);

  const text = req.method === 'POST' ? await readBody(req) : '';
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      // recorded as null; the transport answers the parse error
    }
  }
  requests.push({
    method: req.method,
    path: req.url,
    headers: lowerCaseHeaders(req),
    rpc_methods: body === null ? [] : rpcMethods(body),
    body,
  });

  if (path === SSE_PATH && req.method === 'GET') {
    const transport = new SSEServerTransport(SSE_MESSAGES_PATH, res);
    sseTransports.set(transport.sessionId, transport);
    sseStreams.open += 1;
    res.on('close', () => {
      sseTransports.delete(transport.sessionId);
      sseStreams.open -= 1;
      sseStreams.closed += 1;
    });
    await buildServer().connect(transport);
    return;
  }
  if (path === SSE_MESSAGES_PATH && req.method === 'POST') {
    const sessionId = new URL(req.url, 'https://127.0.0.1').searchParams.get('sessionId');
    const transport = sseTransports.get(sessionId);
    if (!transport) return sendJson(res, 404, { error: 'unknown SSE session' });
    return transport.handlePostMessage(req, res, body);
  }
  if (path !== MCP_PATH) return sendJson(res, 404, { error: 'not found' });
  if (req.method === 'POST' && body === null) {
    return jsonRpcError(res, 400, -32700, 'Parse error');
  }
  return handleMcp(req, res, body ?? undefined);
}

const server = createServer({ cert: readFileSync(certPath), key: readFileSync(keyPath) });
server.on('request', (req, res) => {
  handle(req, res).catch((error) => {
    console.error(error);
    if (!res.headersSent) jsonRpcError(res, 500, -32603, 'Internal error');
    else res.end();
  });
});
server.listen(port, '127.0.0.1', () => {
  const { port: bound } = server.address();
  const url = `https://127.0.0.1:${bound}${MCP_PATH}`;
  process.stdout.write(`${JSON.stringify({ ready: true, url, port: bound })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
if (args['exit-with-stdin']) {
  // the test harness holds our stdin open: exit when it goes away, even if it was killed
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
