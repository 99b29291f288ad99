// Herald's JavaScript client: one EventSource stream of a Herald channel,
// kept open for hours under short-lived tokens, shared by the tabs of one
// user. An ES module with no dependencies and no build step; the types are
// in herald.d.ts. README.md shows how to use it.

/** The HTTP contract's paths (streamer/paths). */
const TICKETS_PATH = '/api/v1/sse/tickets'
const STREAM_PATH = '/api/v1/sse/notifications'
const streamTokenPath = (id) => `/api/v1/sse/streams/${encodeURIComponent(id)}/token`

/** Backoff, unless options.backoff says otherwise. */
const DEFAULT_BACKOFF = {initialMs: 1000, maxMs: 30000}

/** How long a stream must stay open before its backoff starts over. */
const STABLE_MS = 10000

/**
 * Opens a Herald stream and keeps it open until close(). See herald.d.ts
 * for the options and the callbacks.
 *
 * @param {import('./herald').ConnectOptions} options
 * @returns {import('./herald').HeraldClient}
 */
export function connect(options) {
  const client = new Client(options)
  client.start()
  return {
    close: () => client.close(),
    get state() {
      return client.state
    },
    get lastEventId() {
      return client.lastId
    },
    get leader() {
      return client.leader
    },
    announcements: client.announcements,
  }
}

class Client {
  constructor(options) {
    if (!options || typeof options.url !== 'string' || options.url === '') {
      throw new TypeError('connect: options.url, the streamer\'s base URL, is required')
    }
    if (typeof options.getToken !== 'function') {
      throw new TypeError('connect: options.getToken, a function returning the user\'s current JWT, is required')
    }
    this.opts = options
    this.base = options.url.replace(/\/+$/, '')
    this.EventSource = options.EventSource ?? globalThis.EventSource
    this.fetch = options.fetch ?? globalThis.fetch?.bind(globalThis)
    if (typeof this.EventSource !== 'function' || typeof this.fetch !== 'function') {
      throw new TypeError('connect: no EventSource or fetch here; pass options.EventSource and options.fetch')
    }
    this.backoff = {...DEFAULT_BACKOFF, ...options.backoff}
    this.random = options.random ?? Math.random
    /** The id of the last event received, which a new stream resumes from. */
    this.lastId = options.lastEventId ?? ''
    /** The active announcements (system events of SystemEvents), by name. */
    this.announcements = new Map()
    this.state = 'connecting'
    this.leader = false
    this.closed = false
    /** Set when the server said not to reconnect: the client stays closed. */
    this.stopped = false
    /** Whether a stream was ever open, here or in the tab owning it. */
    this.everOpen = false
    /** Failed attempts in a row, for the backoff. */
    this.failures = 0
    this.source = null
    this.timer = null
    this.stableTimer = null
    /** Counts streams: callbacks of an older one are ignored. */
    this.generation = 0
    /** The expiresAt of a warning a refresh did not move: no second try. */
    this.unmovedExpiry = ''
  }

  start() {
    this.run().catch((err) => this.report({state: 'closed', reason: 'error', error: err}))
  }

  async run() {
    if (!this.sharingAvailable()) {
      this.becomeLeader()
      return
    }
    let user = this.opts.userId
    while (user == null) {
      try {
        user = userOfToken(await this.opts.getToken())
      } catch (err) {
        // No token yet, no user to share a stream with: try again later.
        this.failures++
        const ms = this.backoffDelay()
        this.report({state: 'reconnecting', reason: 'token_failed', retryInMs: Math.round(ms), error: err})
        await new Promise((resolve) => (this.timer = setTimeout(resolve, ms)))
      }
      if (this.closed) return
    }
    const name = `herald:${this.base}:${user}`
    this.channel = new BroadcastChannel(name)
    this.channel.onmessage = (e) => this.fromLeader(e.data)
    this.channel.postMessage({t: 'hello'})
    this.lockAbort = new AbortController()
    // The lock is held while this tab runs (the promise resolves on close()):
    // whichever tab holds it owns the stream; the browser passes it on when
    // that tab goes away.
    navigator.locks
      .request(name, {signal: this.lockAbort.signal}, () => {
        if (this.closed) return undefined
        this.becomeLeader()
        return new Promise((resolve) => (this.releaseLock = resolve))
      })
      .catch(() => {}) // aborted by close() while waiting
  }

  sharingAvailable() {
    return (
      this.opts.shareTabs !== false &&
      typeof BroadcastChannel === 'function' &&
      typeof globalThis.navigator?.locks?.request === 'function'
    )
  }

  becomeLeader() {
    this.leader = true
    this.open()
  }

  close() {
    if (this.closed) return
    this.closed = true
    this.closeSource()
    clearTimeout(this.timer)
    this.lockAbort?.abort()
    this.releaseLock?.()
    this.report({state: 'closed', reason: 'closed'}, false)
    this.channel?.close()
  }

  closeSource() {
    this.generation++
    clearTimeout(this.stableTimer)
    if (this.source) {
      this.source.close()
      this.source = null
    }
  }

  // open trades a current token for a ticket and opens the stream with it,
  // resuming from the last id when there is one.
  async open() {
    if (this.closed || this.stopped) return
    const generation = ++this.generation
    if (this.state !== 'reconnecting') {
      this.report(this.everOpen ? {state: 'reconnecting', reason: 'took_over'} : {state: 'connecting', reason: 'opening'})
    }
    let ticket
    try {
      const token = await this.opts.getToken()
      ticket = await this.post(TICKETS_PATH, token)
    } catch (err) {
      if (generation === this.generation) this.retryAfterFailure('ticket_failed', err)
      return
    }
    if (generation !== this.generation || this.closed || this.stopped) return
    let url = `${this.base}${STREAM_PATH}?ticket=${encodeURIComponent(ticket.ticket)}`
    // A new EventSource cannot send Last-Event-ID: the server takes the query
    // parameter instead.
    if (this.lastId !== '') url += `&lastEventId=${encodeURIComponent(this.lastId)}`
    const source = new this.EventSource(url, {withCredentials: this.opts.withCredentials ?? false})
    this.source = source
    source.onmessage = (e) => {
      if (generation === this.generation) this.receive(e.data, e.lastEventId)
    }
    source.onerror = () => {
      // The EventSource would reconnect by itself with the spent ticket and
      // get 401: this client reconnects instead, with a new one.
      if (generation === this.generation) this.retryAfterFailure('error')
    }
  }

  // post POSTs to path with the token as Bearer and returns the JSON answer,
  // or throws an error naming the status and the server's message.
  async post(path, token) {
    const resp = await this.fetch(this.base + path, {
      method: 'POST',
      headers: {Authorization: `Bearer ${token}`},
      credentials: this.opts.withCredentials ? 'include' : 'same-origin',
    })
    const body = await resp.json().catch(() => ({}))
    if (!resp.ok) {
      const err = new Error(`POST ${path}: ${resp.status} ${body?.error?.message ?? resp.statusText}`)
      err.status = resp.status
      throw err
    }
    return body
  }

  // receive handles one event of the stream this tab owns: it is tracked,
  // passed to the other tabs and dispatched.
  receive(raw, id) {
    let data
    try {
      data = JSON.parse(raw)
    } catch {
      return // not the contract's: one line of JSON
    }
    if (id) this.lastId = id
    this.channel?.postMessage({t: 'event', data, id: id ?? ''})
    this.dispatch(data, id ?? '')
    switch (data.type) {
      case 'connection':
        this.onOpened()
        break
      case 'token_expiring':
        this.refresh(data)
        break
      case 'end':
        this.onEnd(data)
        break
    }
  }

  onOpened() {
    this.report({state: 'open', reason: 'connected'})
    // Backoff starts over once a stream proved itself; one that the server
    // ends at once again (a slow consumer) keeps backing off.
    const generation = this.generation
    clearTimeout(this.stableTimer)
    this.stableTimer = setTimeout(() => {
      if (generation === this.generation) this.failures = 0
    }, STABLE_MS)
  }

  // dispatch calls the application's callback for an event, in any tab.
  dispatch(data, id) {
    const o = this.opts
    const info = {id}
    switch (data.type) {
      case 'notification':
        o.onNotification?.(data, info)
        break
      case 'system':
        this.announce(data)
        o.onSystem?.(data, {...info, announcements: this.announcements})
        break
      case 'custom':
        o.onCustom?.(data, info)
        break
    }
    o.onEvent?.(data, info)
  }

  // announce keeps announcements, the system events of SystemEvents in
  // force, one per name: the latest revision, none after a DELETE.
  announce(data) {
    if (typeof data.name !== 'string' || data.name === '') return
    const current = this.announcements.get(data.name)
    if (current && data.revision < current.revision) return
    if (data.action === 'DELETE') this.announcements.delete(data.name)
    else this.announcements.set(data.name, data)
  }

  // refresh moves the stream's expiry with a new token; if that fails, it
  // opens a new stream before the old one expires.
  async refresh(warning) {
    if (warning.expiresAt === this.unmovedExpiry) return
    const generation = this.generation
    try {
      const token = await this.opts.getToken()
      const answer = await this.post(streamTokenPath(warning.streamId), token)
      if (!(Date.parse(answer.expiresAt) > Date.parse(warning.expiresAt))) {
        // getToken gave a token no newer than the stream's: refreshing again
        // would be answered the same. The stream ends at its expiry and the
        // end event says to fetch a new token.
        this.unmovedExpiry = warning.expiresAt
      }
    } catch (err) {
      if (generation !== this.generation || this.closed || this.stopped) return
      this.closeSource()
      this.report({state: 'reconnecting', reason: 'refresh_failed', error: err})
      this.open()
    }
  }

  // onEnd does what the server's end event says.
  onEnd(end) {
    this.closeSource()
    switch (end.reconnect) {
      case 'none':
        // A newer stream of this user took this one's place: reconnecting
        // would end that one. The other tabs stay closed too (fromLeader),
        // and this one keeps the lock, so that none of them takes over.
        this.stopped = true
        this.report({state: 'closed', reason: end.reason, message: end.message})
        return
      case 'back_off':
        this.failures++
        this.reconnectIn(this.backoffDelay(), end.reason)
        return
      case 'new_token':
        // open() asks getToken for the current token every time.
        this.reconnectIn(this.jitter(this.backoff.initialMs / 4), end.reason)
        return
      default: // 'resume', and any advice this client does not know
        if (typeof end.retryMs === 'number') {
          this.reconnectIn(end.retryMs + this.jitter(end.retryMs / 2), end.reason)
        } else {
          this.reconnectIn(this.jitter(this.backoff.initialMs / 4), end.reason)
        }
    }
  }

  retryAfterFailure(reason, error) {
    if (this.closed || this.stopped) return
    this.closeSource()
    this.failures++
    this.reconnectIn(this.backoffDelay(), reason, error)
  }

  reconnectIn(ms, reason, error) {
    clearTimeout(this.timer)
    this.report({state: 'reconnecting', reason, retryInMs: Math.round(ms), ...(error ? {error} : {})})
    this.timer = setTimeout(() => this.open(), ms)
  }

  // backoffDelay is exponential in the failures in a row, with jitter: at
  // least half of it, so that a crowd of clients spreads out.
  backoffDelay() {
    const {initialMs, maxMs} = this.backoff
    const ceiling = Math.min(maxMs, initialMs * 2 ** Math.max(this.failures - 1, 0))
    return ceiling / 2 + this.jitter(ceiling / 2)
  }

  jitter(ms) {
    return this.random() * ms
  }

  // report tells the application, and the other tabs, of a new state.
  report(change, broadcast = true) {
    this.state = change.state
    if (change.state === 'open') this.everOpen = true
    if (broadcast && this.leader) {
      const {error, ...rest} = change
      this.channel?.postMessage({t: 'state', change: {...rest, ...(error ? {error: String(error.message ?? error)} : {})}})
    }
    this.opts.onState?.({...change, leader: this.leader})
  }

  // fromLeader handles what the tab owning the stream broadcast, or another
  // tab's hello, which the owner answers with what a newcomer needs.
  fromLeader(msg) {
    if (this.closed) return
    switch (msg.t) {
      case 'hello':
        if (this.leader) {
          this.channel.postMessage({t: 'welcome', state: this.state, lastId: this.lastId, announcements: [...this.announcements.values()]})
        }
        break
      case 'welcome':
        if (this.leader) break
        if (msg.lastId) this.lastId = msg.lastId
        for (const a of msg.announcements) {
          if (!this.announcements.has(a.name)) this.dispatch(a, '')
        }
        if (msg.state !== this.state) this.report({state: msg.state, reason: 'shared'}, false)
        if (msg.state === 'closed') {
          this.stopped = true
          this.lockAbort?.abort()
        }
        break
      case 'event':
        if (this.leader) break
        if (msg.id) this.lastId = msg.id
        this.dispatch(msg.data, msg.id)
        break
      case 'state':
        if (this.leader) break
        this.report(msg.change, false)
        if (msg.change.state === 'closed') {
          // The owner was told not to reconnect: no tab takes over.
          this.stopped = true
          this.lockAbort?.abort()
        }
        break
    }
  }
}

// userOfToken is the JWT's sub claim, which names the lock the tabs of one
// user share. Not verified: it only groups tabs; the server verifies.
function userOfToken(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')
    return JSON.parse(atob(payload)).sub ?? ''
  } catch {
    return ''
  }
}
