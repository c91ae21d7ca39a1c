import http from 'node:http';
import { Webhook } from 'standardwebhooks';

/** A delivered event, verified: the Standard Webhooks envelope. */
export interface ReceivedEvent {
  type: string;
  timestamp: string;
  data: Record<string, unknown> & { consent_id?: string };
}

/**
 * An outside webhook receiver on 127.0.0.1, as a partner runs one: it verifies every
 * delivery with the `standardwebhooks` library (signature and timestamp) against the
 * secret `subscribe` got from the portal, keeps what verified and counts what did not.
 */
export async function webhookReceiver() {
  let secret = '';
  const received: ReceivedEvent[] = [];
  let forged = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += String(chunk)));
    req.on('end', () => {
      try {
        received.push(
          new Webhook(secret).verify(body, req.headers as Record<string, string>) as never,
        );
        res.writeHead(204).end();
      } catch {
        forged++;
        res.writeHead(401).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
  return {
    url,
    received,
    forged: () => forged,
    /** Registers this receiver with the portal (POST /partner/webhooks over mTLS). */
    async subscribe(
      post: (url: string, json: unknown) => Promise<{ status: number; json(): Promise<unknown> }>,
      mtlsUrl: string,
    ) {
      const res = await post(`${mtlsUrl}/partner/webhooks`, { url });
      if (res.status !== 201) throw new Error(`subscription refused (${res.status})`);
      ({ secret } = (await res.json()) as { secret: string });
      return secret;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
