import type { X509Certificate } from 'node:crypto';
import type Provider from 'oidc-provider';
import { errors, type KoaContextWithOIDC, type ResourceServer } from 'oidc-provider';
import { CONSENT_DETAIL_TYPE, type ConsentRequest } from '../consents/consent.js';
import type { ConsentService } from '../consents/consent.service.js';

/**
 * J1's dedicated grant: after a citizen connects a partner from the portal, the partner
 * (told by the `consent.granted` webhook) takes its tokens for that consent at the token
 * endpoint, without a browser redirect:
 *
 *   POST /token (mTLS, private_key_jwt or tls_client_auth)
 *   grant_type=urn:soglasie:grant-type:consent&consent_id=<uuid>
 *
 * Only the partner the citizen chose, only for a consent started on the portal, and the
 * access token is bound to the certificate it presents (RFC 8705), like every other.
 * The consent turns active at that moment («Активно» on both sides).
 */
export const CONSENT_GRANT_TYPE = 'urn:soglasie:grant-type:consent';

/** The provider's grant for what the citizen approved, carrying the consent as RAR. */
export async function saveConsentGrant(
  provider: Provider,
  resource: string,
  input: {
    accountId: string;
    clientId: string;
    consentId: string;
    request: ConsentRequest;
    approvedScopes: string[];
    expiresAt: Date;
  },
): Promise<string> {
  const grant = new provider.Grant({ accountId: input.accountId, clientId: input.clientId });
  grant.addOIDCScope(['openid', ...input.approvedScopes].join(' '));
  grant.addResourceScope(resource, input.approvedScopes.join(' '));
  // Unticked on the screen: rejected, so they are neither issued nor asked for again.
  const declined = input.request.scopes.filter((s) => !input.approvedScopes.includes(s));
  if (declined.length > 0) {
    grant.rejectOIDCScope(declined.join(' '));
    grant.rejectResourceScope(resource, declined.join(' '));
  }
  grant.addRar({
    type: CONSENT_DETAIL_TYPE,
    consent_id: input.consentId,
    sysname: input.request.type,
    purposes: input.request.purposes,
    actions: input.request.actions,
    scopes: input.approvedScopes,
    expires_at: input.expiresAt.toISOString(),
    ...(input.request.applicationRef ? { application_ref: input.request.applicationRef } : {}),
  });
  return grant.save();
}

export function registerConsentGrant(
  provider: Provider,
  deps: {
    consents: ConsentService;
    resource: string;
    resourceServer: ResourceServer;
    peerCertificate: (ctx: KoaContextWithOIDC) => X509Certificate | undefined;
  },
): void {
  const handler = async (ctx: KoaContextWithOIDC) => {
    const client = ctx.oidc.client!;
    const consentId = ctx.oidc.params?.consent_id;
    if (typeof consentId !== 'string' || !/^[0-9a-f-]{36}$/.test(consentId)) {
      throw new errors.InvalidRequest('consent_id must be the id of the consent to take');
    }
    if (!client.tlsClientCertificateBoundAccessTokens) {
      throw new errors.UnauthorizedClient('this grant issues certificate-bound tokens only');
    }
    const cert = deps.peerCertificate(ctx);
    if (!cert) throw new errors.InvalidGrant('mutual TLS client certificate not provided');

    // Activates a pending portal-initiated consent of this very client, or refuses.
    const consent = await deps.consents.connect(consentId, client.clientId);
    if (!consent?.grantId || consent.status !== 'active') {
      throw new errors.InvalidGrant(
        'no portal-initiated consent with this id is open to this client',
      );
    }
    const grant = await provider.Grant.find(consent.grantId);
    if (!grant || grant.clientId !== client.clientId) {
      throw new errors.InvalidGrant('the grant behind this consent is gone');
    }
    ctx.oidc.entity('Grant', grant);
    const scope = ['openid', ...consent.scopes].join(' ');

    const at = new provider.AccessToken({
      accountId: consent.citizenId,
      client,
      grantId: consent.grantId,
      gty: CONSENT_GRANT_TYPE,
      rar: grant.rar,
    } as never);
    at.setThumbprint('x5t', cert);
    at.resourceServer = new provider.ResourceServer(deps.resource, deps.resourceServer);
    at.scope = grant.getResourceScopeFiltered(
      deps.resource,
      consent.scopes.filter((s) => at.resourceServer!.scopes.has(s)),
    );
    ctx.oidc.entity('AccessToken', at);
    const accessToken = await at.save();

    const rt = new provider.RefreshToken({
      accountId: consent.citizenId,
      client,
      grantId: consent.grantId,
      gty: CONSENT_GRANT_TYPE,
      scope,
      resource: deps.resource,
      rotations: 0,
      rar: grant.rar,
    } as never);
    ctx.oidc.entity('RefreshToken', rt);
    const refreshToken = await rt.save();

    ctx.body = {
      access_token: accessToken,
      token_type: at.tokenType,
      expires_in: at.expiration,
      refresh_token: refreshToken,
      scope: at.scope,
      authorization_details: grant.rar,
    };
  };
  provider.registerGrantType(CONSENT_GRANT_TYPE, handler as never, ['consent_id']);
}
