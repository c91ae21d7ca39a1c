import type { Clock } from '../clock.js';

/** A message to a person: an SMS or an e-mail. */
export interface OutgoingMessage {
  to: string;
  channel: 'sms' | 'email';
  subject: string;
  text: string;
  /** The one-time code the message carries, if any (shown by the dev outbox). */
  code?: string;
}

export interface Notifier {
  send(message: OutgoingMessage): Promise<void>;
}

export interface OutboxEntry extends OutgoingMessage {
  at: string;
}

/**
 * Demo mode's stand-in for the SMS gateway and the mail server: messages are kept in
 * memory, newest first, and shown at GET /dev/outbox. It never exists outside demo
 * and test modes.
 */
export function createDevOutbox(clock: Clock, capacity = 500) {
  const entries: OutboxEntry[] = [];
  return {
    async send(message: OutgoingMessage): Promise<void> {
      entries.unshift({ ...message, at: clock.now().toISOString() });
      if (entries.length > capacity) entries.length = capacity;
    },
    list(to?: string): OutboxEntry[] {
      const wanted = to ? normalizeRecipient(to) : undefined;
      return entries.filter((e) => wanted === undefined || normalizeRecipient(e.to) === wanted);
    },
  };
}

export type DevOutbox = ReturnType<typeof createDevOutbox>;

/** Phones compare by digits (`+7 999 000-00-01` is `+79990000001`); e-mails without case. */
export function normalizeRecipient(to: string): string {
  const trimmed = to.trim();
  if (trimmed.includes('@')) return trimmed.toLowerCase();
  return trimmed.replace(/[^\d]/g, '');
}
