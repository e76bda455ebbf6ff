import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { RequestHandler } from 'express';
import helmet from 'helmet';

export const DOCS_PATH = '/docs';

/**
 * OpenAPI for /v1 only (health, metrics, the browser routes and the sandbox are not the API), with Swagger UI at
 * /docs and the document at /docs-json. Swagger UI is served from this service's own copy of swagger-ui-dist under a
 * CSP of its own: scripts only from here, inline styles (Swagger UI sets them), nothing from elsewhere. The page and
 * the document are not stored: they describe this deployment's API as it is now.
 */
export function setupApiDocs(app: INestApplication): void {
  const config = new DocumentBuilder()
    .setTitle('Atlassian token service')
    .setDescription(
      'Connects your users to Atlassian Cloud through OAuth 2.0 (3LO), keeps their tokens fresh, and answers which sites each ' +
        'user can reach and a valid access token for them. Every route takes the header Authorization: Bearer <API key>; every ' +
        'error is { "error": { "code", "message" } }.',
    )
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'One of the keys in API_KEYS.' })
    .build();
  const document = SwaggerModule.createDocument(app, config);
  document.paths = Object.fromEntries(Object.entries(document.paths).filter(([path]) => path.startsWith('/v1/')));
  app.use([DOCS_PATH, `${DOCS_PATH}-json`], noStore);
  app.use(
    DOCS_PATH,
    helmet.contentSecurityPolicy({
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    }),
  );
  SwaggerModule.setup(DOCS_PATH.slice(1), app, document, {
    jsonDocumentUrl: `${DOCS_PATH.slice(1)}-json`,
    customSiteTitle: 'Atlassian token service API',
    swaggerOptions: { validatorUrl: null, persistAuthorization: false },
  });
}

const noStore: RequestHandler = (_req, res, next) => {
  res.setHeader('Cache-Control', 'no-store');
  next();
};
