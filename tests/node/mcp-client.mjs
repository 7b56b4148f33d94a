// A real MCP client (official TypeScript SDK, Streamable HTTP) for the adp-e2e tests:
// connects, calls one tool and reports the outcome.
//
//   node mcp-client.mjs URL [TOKEN] [TOOL] [ARGS_JSON]
//
// TOKEN goes out as `Authorization: Bearer TOKEN` on every request (an empty TOKEN sends
// no Authorization header); TOOL defaults to whoami, ARGS_JSON to {}. The client declares
// elicitation capabilities {form: {}, url: {}} and, being SDK 1.x, offers protocol
// 2025-11-25 (the SDK's LATEST_PROTOCOL_VERSION) in initialize. Any elicitation/create
// request from the server is declined and reported.
//
// Prints exactly one JSON line to stdout and exits 0 either way:
//   {"ok":true,"result":<CallToolResult>,"protocolVersion":"…","sessionId":"…"}
//   {"ok":false,"phase":"connect"|"call","errorClass":"…","code":…,"message":"…","data":…}
// errorClass is the thrown class: McpError / UrlElicitationRequiredError carry the
// JSON-RPC error code and data (the server answered 2xx with a JSON-RPC error);
// StreamableHTTPError means a non-2xx HTTP answer: code is the HTTP status, and
// httpBody the response body (parsed when it is JSON).
// For an https URL signed by a test CA, set NODE_EXTRA_CA_CERTS.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const [url, token = '', tool = 'whoami', argsJson = '{}'] = process.argv.slice(2);

function emit(value) {
  return new Promise((resolve) => {
    process.stdout.write(`${JSON.stringify(value)}\n`, resolve);
  });
}

// The transport folds the response body into the message text; give it back as data.
function httpBody(error) {
  const prefix = 'Streamable HTTP error: Error POSTing to endpoint: ';
  if (!error.message.startsWith(prefix)) return undefined;
  const text = error.message.slice(prefix.length);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function failure(phase, error) {
  const report = {
    ok: false,
    phase,
    errorClass: error?.constructor?.name ?? typeof error,
    code: error?.code ?? null,
    message: error?.message ?? String(error),
    data: error?.data ?? null,
  };
  // fetch's "fetch failed" hides the reason (refused, certificate, ...) in cause
  if (error?.cause) report.cause = String(error.cause?.message ?? error.cause);
  if (error instanceof StreamableHTTPError) report.httpBody = httpBody(error) ?? null;
  return report;
}

async function main() {
  if (!url) {
    return { ok: false, phase: 'connect', code: null, message: 'usage: mcp-client.mjs URL [TOKEN] [TOOL] [ARGS_JSON]', data: null };
  }
  const toolArgs = JSON.parse(argsJson);
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  const client = new Client(
    { name: 'adp-e2e-client', version: '1.0.0' },
    { capabilities: { elicitation: { form: {}, url: {} } } },
  );
  const elicitations = [];
  client.setRequestHandler(ElicitRequestSchema, async (request) => {
    elicitations.push(request.params);
    return { action: 'decline' };
  });
  const withElicitations = (report) =>
    elicitations.length ? { ...report, elicitationRequests: elicitations } : report;

  try {
    await client.connect(transport);
  } catch (error) {
    return withElicitations(failure('connect', error));
  }
  try {
    const result = await client.callTool({ name: tool, arguments: toolArgs });
    return withElicitations({
      ok: true,
      result,
      protocolVersion: transport.protocolVersion ?? null,
      sessionId: transport.sessionId ?? null,
    });
  } catch (error) {
    return withElicitations(failure('call', error));
  } finally {
    await client.close().catch(() => {});
  }
}

let report;
try {
  report = await main();
} catch (error) {
  report = failure('connect', error);
}
await emit(report);
process.exit(0);
