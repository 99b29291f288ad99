// Types of herald.js, Herald's JavaScript client.

/** The state of a client's stream, as onState reports it. */
export type StreamState = 'connecting' | 'open' | 'reconnecting' | 'closed'

export interface StateChange {
  state: StreamState
  /**
   * Why: `opening`, `connected`, `took_over` (this tab now owns the shared
   * stream), an end event's `reason` (`token_expired`, `replaced`,
   * `slow_consumer`, `lagged`, `drain`), `error` (the connection failed),
   * `ticket_failed`, `refresh_failed`, `token_failed` (getToken failed before
   * the tabs could share a stream), `shared` (mirrored from the tab owning
   * the stream) or `closed` (close() was called).
   */
  reason: string
  /** When reconnecting: the delay before the next attempt. */
  retryInMs?: number
  /** The end event's message, for `replaced`. */
  message?: string
  /** What failed, for `error`, `ticket_failed` and `refresh_failed`. */
  error?: unknown
  /** Whether this tab owns the stream (always true without tab sharing). */
  leader: boolean
}

/**
 * What comes with every event: the stream's last event id as of it (the
 * EventSource's lastEventId: an event without an id: field, such as `end` or
 * an announcement replayed on connect, repeats the one before it).
 */
export interface EventInfo {
  id: string
}

export interface NotificationEvent {
  type: 'notification'
  notificationId: string
  notificationType: string
  action: string
  priority: string
  data: unknown
  timestamp: string
  userId: string
}

export interface SystemEvent {
  type: 'system'
  eventType: string
  data: unknown
  priority?: string
  timestamp: string
  /** Set for announcements of SystemEvent resources: CREATE, UPDATE or DELETE. */
  action?: 'CREATE' | 'UPDATE' | 'DELETE'
  /** The SystemEvent's name, the same for each revision and its retraction. */
  name?: string
  revision?: number
  expiresAt?: string
}

export interface CustomEvent {
  type: 'custom'
  eventType: string
  data: unknown
  priority?: string
  timestamp: string
}

export interface SystemInfo extends EventInfo {
  /**
   * The announcements in force after this event, by SystemEvent name: the
   * latest revision of each, none after its DELETE. One banner per entry.
   */
  announcements: ReadonlyMap<string, SystemEvent>
}

export interface ConnectOptions {
  /** The streamer's base URL, e.g. https://notify.example.com. */
  url: string
  /** The user's current JWT; called before every ticket and refresh. */
  getToken: () => string | Promise<string>
  onNotification?: (event: NotificationEvent, info: EventInfo) => void
  onSystem?: (event: SystemEvent, info: SystemInfo) => void
  onCustom?: (event: CustomEvent, info: EventInfo) => void
  onState?: (change: StateChange) => void
  /** Every event of the stream, those above and connection, token_expiring and end. */
  onEvent?: (event: {type: string; [field: string]: unknown}, info: EventInfo) => void
  /** Resume from this event id on the first connection. */
  lastEventId?: string
  /** Sends cookies with the ticket request and the stream (CORS credentials). */
  withCredentials?: boolean
  /** Exponential backoff with jitter after failures; defaults 1000 and 30000. */
  backoff?: {initialMs?: number; maxMs?: number}
  /**
   * Share one stream among the tabs of this origin and user (default true;
   * off where BroadcastChannel or navigator.locks is missing).
   */
  shareTabs?: boolean
  /** The user, which names the shared stream; default: the token's `sub`. */
  userId?: string
  /** Defaults to globalThis.EventSource (under Node: the eventsource package's). */
  EventSource?: new (url: string, init?: {withCredentials?: boolean}) => EventSourceLike
  /** Defaults to globalThis.fetch. */
  fetch?: typeof fetch
  /** Defaults to Math.random: the jitter's source. */
  random?: () => number
}

export interface EventSourceLike {
  onmessage: ((event: {data: string; lastEventId: string}) => void) | null
  onerror: ((event: unknown) => void) | null
  close(): void
}

export interface HeraldClient {
  /** Stops everything: the stream, timers, and this tab's share of it. */
  close(): void
  readonly state: StreamState
  /** The id of the last event received: where a new stream resumes. */
  readonly lastEventId: string
  /** Whether this tab owns the stream. */
  readonly leader: boolean
  /** The announcements in force, by SystemEvent name. */
  readonly announcements: ReadonlyMap<string, SystemEvent>
}

export function connect(options: ConnectOptions): HeraldClient
