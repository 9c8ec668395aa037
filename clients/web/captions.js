// Caption lines: the finals and the current partial, newest at the bottom, at most `maxLines`.
//
// Policy: one element per segment of the current session, in segment order. Each partial replaces
// its segment's previous one (stable text solid, unstable tail faded); the final replaces them all,
// even where it differs (it is decoded again over the whole segment). A final also removes the
// partials of earlier segments: a segment without words never gets a final. Empty text shows
// nothing. Over `maxLines`, the oldest lines go. A new session (after a reconnect) numbers its
// segments from 0 again: the finals shown stay, the partials of the old one go.

export class Captions {
  constructor(box, maxLines) {
    this.box = box;
    this.maxLines = maxLines;
    this.current = new Map(); // segment_id -> element, this session's only
  }

  newSession() {
    for (const [id, el] of this.current) if (el.classList.contains("partial")) this.remove(id);
    this.current = new Map();
  }

  partial({ segment_id: id, stable_text: stable, unstable_text: unstable }) {
    if (this.current.get(id)?.classList.contains("final")) return; // the protocol sends none after it
    if (!stable && !unstable) return this.remove(id);
    const el = this.line(id, "partial");
    el.replaceChildren(span("stable", stable), span("unstable", unstable));
    this.update();
  }

  final({ segment_id: id, text }) {
    for (const [other, el] of this.current) {
      if (other < id && el.classList.contains("partial")) this.remove(other);
    }
    if (!text) return this.remove(id);
    this.line(id, "final").textContent = text;
    this.update();
  }

  // The segment's element, created in segment order if new, with `kind` as its only class.
  line(id, kind) {
    let el = this.current.get(id);
    if (!el) {
      el = document.createElement("p");
      el.dataset.segmentId = id;
      const later = [...this.current].filter(([other]) => other > id).sort((a, b) => a[0] - b[0])[0];
      this.box.insertBefore(el, later ? later[1] : null);
      this.current.set(id, el);
    }
    el.className = kind;
    return el;
  }

  remove(id) {
    this.current.get(id)?.remove();
    this.current.delete(id);
  }

  update() {
    while (this.box.children.length > this.maxLines) {
      const oldest = this.box.firstElementChild;
      const id = Number(oldest.dataset.segmentId);
      if (this.current.get(id) === oldest) this.current.delete(id);
      oldest.remove();
    }
    this.box.scrollTop = this.box.scrollHeight; // wrapped lines beyond the box's height scroll up
  }
}

function span(className, text) {
  const el = document.createElement("span");
  el.className = className;
  el.textContent = text;
  return el;
}
