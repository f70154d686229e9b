// "Latest wins", in one place. A lane is a stream of requests of which only
// the newest matters: the page's attribution (its map and its baseline
// gallery), each of the page's views, each widget. Every request gets an id
// from its lane; a newer id makes every older request of the same lane moot,
// and of no other lane:
//   - queued in the worker, an older request is dropped unrun (a burst of
//     requests collapses into its newest);
//   - running, it is stopped in flight where the page is cross-origin
//     isolated: each lane has a slot in a shared Int32Array that the page
//     writes before it posts and the module's stop callback reads;
//   - answered anyway (no isolation, no shared memory), its result is dropped
//     on the page.
// The page's side is LaneIds (one per EngineClient); the worker's is
// LatestQueue. Nothing else keeps request ids.

// Lanes with a slot in the shared counters; a page with more lanes than this
// (more than a few hundred widgets) still gets "latest wins" for them, but
// their computations run to the end once started.
export const SHARED_SLOTS = 256;

// The page's side: hands out lanes and ids (ids grow across all lanes).
// `send(message, transfer)` posts to the worker.
export class LaneIds {
  constructor(shared, send) {
    this.shared = shared; // Int32Array(SHARED_SLOTS) over a SharedArrayBuffer, or null
    this.send = send;
    this.lanes = [];
    this.lastId = 0;
  }

  open() {
    const lane = new Lane(this, this.lanes.length);
    this.lanes.push(lane);
    return lane;
  }

  issue(lane) {
    const id = ++this.lastId;
    if (this.shared && lane < this.shared.length) Atomics.store(this.shared, lane, id);
    return id;
  }
}

// One lane. `request` posts a job as the lane's new newest request; `next`
// and `post` do the same in two steps, for a caller that has to fetch
// something first (the id is taken, and older requests cancelled, at once);
// `cancel` makes every request so far moot; `isNewest(id)` says whether a
// request, or its result, still counts.
export class Lane {
  constructor(ids, index) {
    this.ids = ids;
    this.index = index;
    this.newest = 0;
  }

  next() {
    this.newest = this.ids.issue(this.index);
    return this.newest;
  }

  isNewest(id) {
    return id === this.newest;
  }

  post(id, type, payload = {}, transfer = []) {
    this.ids.send({ ...payload, type, lane: this.index, id }, transfer);
  }

  request(type, payload, transfer) {
    const id = this.next();
    this.post(id, type, payload, transfer);
    return id;
  }

  cancel() {
    this.post(this.next(), 'cancel');
  }
}

// The worker's side: at most one queued job per lane (the newest seen), taken
// in the order the lanes' newest jobs came; `stale(job)` is the stop
// condition of a job that runs. A job is {lane, id, ...}; a job of type
// 'cancel' only makes the lane's older jobs moot.
export class LatestQueue {
  constructor(shared) {
    this.shared = shared;
    this.queued = new Map();
    this.newest = new Map();
    // How often "latest wins" applied: jobs dropped before they ran, and
    // computations stopped in flight (counted by the caller).
    this.stats = { skipped: 0, cancelled: 0 };
  }

  get size() {
    return this.queued.size;
  }

  put(job) {
    if (job.id <= (this.newest.get(job.lane) || 0)) {
      if (job.type !== 'cancel') this.stats.skipped += 1;
      return;
    }
    this.newest.set(job.lane, job.id);
    if (this.queued.delete(job.lane)) this.stats.skipped += 1;
    if (job.type !== 'cancel') this.queued.set(job.lane, job);
  }

  // The next job still worth running, or null.
  take() {
    for (const [lane, job] of this.queued) {
      this.queued.delete(lane);
      if (!this.stale(job)) return job;
      this.stats.skipped += 1;
    }
    return null;
  }

  // Whether a newer request of the job's lane exists: delivered to the
  // worker, or (isolated pages) announced through the lane's shared slot.
  stale(job) {
    if (job.id !== this.newest.get(job.lane)) return true;
    return Boolean(this.shared) && job.lane < this.shared.length && Atomics.load(this.shared, job.lane) !== job.id;
  }
}
