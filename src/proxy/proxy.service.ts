import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { Injectable } from '@nestjs/common';
import { DomainError } from '../common/errors.js';
import { AppConfig } from '../config/app-config.js';
import { AccessibleResourcesService } from '../connections/accessible-resources.service.js';
import { AtlassianApi } from '../product-calls/atlassian-api.service.js';
import { checkDeclaredLength, readBody } from './proxy-body.js';
import { answeredHeaders, forwardedRequestHeaders } from './proxy-headers.js';
import { isProxyProduct, pathProblem } from './proxy-path.js';
import { ProxyMetrics } from './proxy.metrics.js';

export interface ProxyRequest {
  readonly userId: string;
  readonly product: string;
  readonly cloudId: string;
  readonly method: string;
  /** After `/{cloudId}`, starting with `/`, as the caller sent it (still percent-encoded). */
  readonly path: string;
  /** As the caller sent it, without `?`. */
  readonly query: string;
  /** The caller's request: its headers, and its body, not read yet. */
  readonly request: IncomingMessage;
}

export interface ProxiedAnswer {
  readonly status: number;
  readonly headers: readonly [name: string, value: string][];
  /** Atlassian's body, to be streamed on. */
  readonly body: Readable;
}

/**
 * `/v1/users/{userId}/proxy/{product}/{cloudId}/{path…}`: a product call as the user, through the same machinery as
 * every call (a token from the refresh rules, one retry after a 401, the rate-limit governor). Everything that can be
 * refused is refused before anything reaches Atlassian: the product, the path, the body's size, the connection and
 * whether the site is one of the user's stored sites.
 */
@Injectable()
export class ProxyService {
  constructor(
    private readonly resources: AccessibleResourcesService,
    private readonly atlassian: AtlassianApi,
    private readonly config: AppConfig,
    private readonly metrics: ProxyMetrics,
  ) {}

  async forward(request: ProxyRequest): Promise<ProxiedAnswer> {
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    try {
      const answer = await this.call(request);
      this.metrics.observe(request.product, request.method, answer.status, seconds());
      return answer;
    } catch (error) {
      this.metrics.observe(request.product, request.method, error instanceof DomainError ? error.status : 500, seconds());
      throw error;
    }
  }

  private async call(request: ProxyRequest): Promise<ProxiedAnswer> {
    const { userId, product, cloudId } = request;
    if (!isProxyProduct(product)) throw new DomainError('invalid_product', 'The product must be jira or confluence.');
    const problem = pathProblem(request.path);
    if (problem) {
      throw new DomainError(
        'invalid_path',
        `The path after the cloudId cannot be forwarded: ${problem}. It must stay under /ex/${product}/{cloudId}/ however it is decoded.`,
      );
    }
    const maxBytes = this.config.proxy.maxBodyBytes;
    checkDeclaredLength(request.request, maxBytes);
    // The site check and the token read go to the database together: one wait where there were two in a row.
    const made = this.resources.assertSiteListed(userId, cloudId).then(async () => ({
      method: request.method,
      path: request.path,
      query: request.query,
      headers: forwardedRequestHeaders(request.request.headers),
      body: await readBody(request.request, maxBytes),
    }));
    const answer = await this.atlassian.productStream(userId, product, cloudId, made);
    return { status: answer.status, headers: answeredHeaders(answer.headers), body: answer.body };
  }
}
