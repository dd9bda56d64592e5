/**
 * @packageDocumentation
 * The service shell that both swarmdrop services run, apart from the
 * protocol they speak: the one port (DualServer sniffs BitTorrent, MSE and
 * HTTP; acceptIncoming takes a handshake), the domain events and their
 * subscribers (the console log, metrics, the dashboard, the progress
 * line), a private swarm's admission and token, options and the command
 * line. It depends on `@swarmdrop/protocol`, never the reverse; owner and
 * peer depend on both. Bundled into each service's single-file release.
 */
export { Admission, type AdmissionOptions } from './admission.js';
export {
  publishClosed,
  publishConnected,
  publishMetadataFetch,
  publishTraffic,
} from './connection-events.js';
export {
  DASHBOARD_KEEPALIVE_MS,
  DASHBOARD_REPORT_HEADER,
  DASHBOARD_REPORT_IDLE_MS,
  DASHBOARD_REPORT_PATH,
  DASHBOARD_REPORT_WATCHED_MS,
  DASHBOARD_STALL_MS,
  type DashboardAssets,
  DashboardHttp,
  type DashboardHttpOptions,
  DEFAULT_DASHBOARD_INTERVAL_MS,
  DEFAULT_MAX_DASHBOARD_CLIENTS,
  dashboardAssets,
} from './dashboard/dashboard-http.js';
export {
  CHUNK_CODES,
  type ChunkCode,
  codeOfVia,
  type DashboardFile,
  DashboardModel,
  type DashboardModelOptions,
  type DashboardUpdate,
  DEFAULT_MAX_EDGES,
  DEFAULT_MAX_NODES,
  DEFAULT_NODE_STALE_MS,
  DEFAULT_RECENT_EVENTS,
  decodeRuns,
  encodeRuns,
  MAX_EVENT_TEXT,
  MAX_REPORT_BYTES,
  MAX_REPORT_CONNECTIONS,
  MAX_REPORT_EVENTS,
  MAX_REPORT_LINKS,
  MAX_REPORT_RATE,
  NOTABLE_EVENTS,
  type NodeKind,
  type PeerReport,
  parseReport,
  type RecentEvent,
  ReportError,
  type ReportLink,
} from './dashboard/model.js';
export {
  type ChunkSource,
  DomainEvents,
  type EventFields,
  type EventSink,
  type IdListAs,
  idListAs,
  type Publish,
  type RemoteKind,
  type ServiceEvents,
  subscribeLog,
} from './events.js';
export {
  type HostedService,
  type ServiceClose,
  type ServiceGauges,
  ServiceHost,
  type ServiceHostComponents,
  type ServiceHostOptions,
} from './host.js';
export {
  BoundedWriter,
  type BoundedWriterOptions,
  LOG_BUFFER_BYTES,
  LOG_COALESCE_BYTES,
  LOG_COALESCE_MS,
  LOG_FLUSH_TIMEOUT_MS,
  LOG_RETRY_MAX_MS,
  LOG_RETRY_MIN_MS,
  LOG_WRITE_MAX_BYTES,
  type WriteBytes,
} from './log/bounded-writer.js';
export {
  formatJson,
  formatRanges,
  formatRecord,
  formatText,
  JSON_FIELD_RENAMES,
  jsonBody,
  LOG_EVENTS,
  type LogEventName,
  type LogFields,
  type LogFormat,
  type LogRecord,
  type LogValue,
  parseRanges,
  parseTextLine,
} from './log/log.js';
export {
  DEFAULT_LOG_BURST,
  DEFAULT_LOG_MAX_SOURCES,
  DEFAULT_LOG_PER_SECOND,
  LIMITED_LOG_EVENTS,
  LogLimiter,
  type LogLimiterOptions,
  type Suppressed,
} from './log/log-limit.js';
export { type LogSink, streamSink } from './log/log-sink.js';
export {
  createLogger,
  LOG_SUPPRESSED_EVERY_MS,
  type Logger,
  type LoggerOptions,
} from './log/logger.js';
export { LOG_BUFFER_ENV, type StdoutKind, StdoutWriter, stdoutWriter } from './log/stdout.js';
export {
  createMetrics,
  type KindLabel,
  type MetricsOptions,
  REQUEST_SECONDS_BUCKETS,
  remoteKind,
  type ServiceMetrics,
  type SourceLabel,
  sendMetrics,
} from './metrics.js';
export { runServiceBin, type ServiceBin } from './options/bin.js';
export {
  loadToken,
  onShutdownSignal,
  packageVersion,
  runMain,
  runServiceCli,
  type ServiceCli,
} from './options/cli.js';
export {
  anyTextValue,
  bytesValue,
  endpointValue,
  formatOptionLines,
  HELP_COLUMN,
  integerValue,
  type OptionFlag,
  type OptionSchema,
  type OptionSpec,
  ofType,
  parseArgsOptions,
  rateValue,
  readFlags,
  resolveOptions,
  SERVICE_FLAGS,
  switchValue,
  textValue,
  type ValueSpec,
} from './options/option-schema.js';
export { parseIntegerOption, parseLogFormat } from './options/options.js';
export {
  type AcceptIncomingOptions,
  acceptIncoming,
  DEFAULT_INCOMING_TIMEOUT_MS,
  type IncomingConnection,
  type IncomingHandlers,
  type IncomingHandlersOptions,
  IncomingRefusedError,
  type IncomingStart,
  incomingHandlers,
} from './port/accept-incoming.js';
export {
  BITTORRENT_FIRST_BYTE,
  DEFAULT_FIRST_BYTE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
  DEFAULT_MAX_HTTP_CONNECTIONS,
  DEFAULT_MAX_HTTP_CONNECTIONS_PER_ADDRESS,
  DEFAULT_MAX_PENDING_CONNECTIONS,
  DEFAULT_MAX_PENDING_CONNECTIONS_PER_ADDRESS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DualServer,
  type DualServerOptions,
  type DualServerStats,
  sniffConnection,
} from './port/dual-server.js';
export {
  DEFAULT_MAX_HANDSHAKES,
  DEFAULT_MAX_HANDSHAKES_PER_ADDRESS,
  HandshakeBudget,
  type HandshakeBudgetOptions,
  type HandshakeBudgetStats,
  type HandshakeSlot,
} from './port/handshake-budget.js';
export {
  carriesToken,
  httpRouter,
  requestPath,
  requestQuery,
  sendBody,
  sendJson,
  sendText,
  sendUnauthorized,
} from './port/http.js';
export {
  formatDuration,
  PROGRESS_RATE_WINDOW_MS,
  PROGRESS_REDRAW_MS,
  ProgressLine,
  type ProgressLineOptions,
  ProgressStats,
  type StatusOutput,
  wantsStatusLine,
} from './progress-line.js';
export {
  formatLink,
  LINK_SCHEME,
  looksLikeLink,
  MAX_TOKEN_LENGTH,
  MIN_TOKEN_LENGTH,
  parseInfoHash,
  parseLink,
  parseSha256,
  parseToken,
  type SwarmdropLink,
  TOKEN_ENV,
  tokenMatches,
} from './token.js';
