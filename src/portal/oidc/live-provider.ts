import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import { createProvider, type ProviderDeps } from './provider.js';
import type { SigningKeys } from './signing-keys.js';

/**
 * oidc-provider takes its signing keys once, at construction: ID tokens are signed with
 * the first key of its `jwks`, access tokens with the first that fits the resource
 * server's algorithm. So a portal that must switch keys while it runs builds a new
 * Provider with the new current key and sends OIDC requests to it from then on.
 *
 * - The signing keys are re-read at most every SIGNING_KEY_TIMING.refreshMs, just before
 *   an OIDC request is handled; when the current key has changed (a rotation, on this
 *   instance or another), the next request is served by a Provider holding the new key.
 * - Everything oidc-provider keeps (interactions, grants, codes, tokens, sessions) is in
 *   the database and its cookies are signed with the same cookie keys, so a flow started
 *   on the old instance finishes on the new one. Routes keep the first instance for
 *   interactionDetails/interactionFinished and the models: they sign nothing.
 * - The JWKS is not the provider's: /jwks serves every published key from the database
 *   (next and retired included), see app.ts.
 */
export interface LiveProvider {
  /** The first instance: for interactions and models (any instance serves those). */
  readonly provider: Provider;
  /** The raw handler: refreshes the keys when due, then the current instance handles. */
  handler(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** The kid the current instance signs with. */
  signingKid(): string;
}

export async function createLiveProvider(
  deps: Omit<ProviderDeps, 'jwks'> & { signingKeys: SigningKeys; logger: Logger },
): Promise<LiveProvider> {
  const { signingKeys, logger, ...providerDeps } = deps;

  async function build(kid: string) {
    const jwk = await signingKeys.privateJwk(kid);
    const provider = createProvider({ ...providerDeps, jwks: { keys: [jwk] } });
    return { kid, provider, callback: provider.callback() };
  }

  let live = await build((await signingKeys.snapshot()).currentKid);
  const first = live.provider;
  let switching: Promise<void> | undefined;

  async function current() {
    const snapshot = await signingKeys.snapshot().catch((err: unknown) => {
      logger.error({ err }, 'cannot read the token signing keys; signing with the last known');
      return undefined;
    });
    if (snapshot && snapshot.currentKid !== live.kid) {
      switching ??= build(snapshot.currentKid)
        .then((next) => {
          logger.info({ from: live.kid, to: next.kid }, 'token signing key switched');
          live = next;
        })
        .catch((err: unknown) => {
          logger.error({ err }, 'cannot switch to the new token signing key');
        })
        .finally(() => {
          switching = undefined;
        });
      await switching;
    }
    return live;
  }

  return {
    provider: first,
    async handler(req, res) {
      await (await current()).callback(req, res);
    },
    signingKid: () => live.kid,
  };
}
