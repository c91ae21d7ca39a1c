import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { h } from 'preact';
import { Type } from 'typebox';
import { Alert, Layout } from '../views/layout.js';
import { renderDocument } from '../views/render.js';
import { AppError } from './errors.js';

/** RFC 9457 problem details, with our stable `code`. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
}

/** The same shape as a schema, for route documentation. */
export const ProblemSchema = Type.Object({
  type: Type.String(),
  title: Type.String(),
  status: Type.Integer(),
  detail: Type.String(),
  code: Type.String(),
  instance: Type.Optional(Type.String()),
});

export interface ErrorPageLook {
  site: string;
  theme: 'portal' | 'bank';
  demo: boolean;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

const RU_TITLES: Record<number, string> = {
  400: 'Проверьте данные',
  401: 'Нужен вход',
  403: 'Доступ запрещён',
  404: 'Страница не найдена',
  413: 'Слишком большой запрос',
  415: 'Неподдерживаемый формат',
  429: 'Слишком много попыток',
  500: 'Ошибка сервиса',
  503: 'Сервис недоступен',
};

/** Maps anything thrown to an AppError; unknown errors become an opaque 500. */
export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  const fe = error as Partial<FastifyError> & { validation?: unknown };
  if (fe.validation) {
    return new AppError(
      'VALIDATION_FAILED',
      400,
      fe.message ?? 'The request is invalid.',
      'Проверьте заполнение полей формы.',
    );
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError(
        'PAYLOAD_TOO_LARGE',
        413,
        'The request body is too large.',
        'Отправлено слишком много данных.',
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError(
        'UNSUPPORTED_MEDIA_TYPE',
        415,
        'This content type is not accepted here.',
        'Такой формат данных не поддерживается.',
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new AppError(
        'MALFORMED_BODY',
        400,
        'The body is not valid JSON.',
        'Запрос повреждён.',
      );
  }
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new AppError(
      'BAD_REQUEST',
      fe.statusCode,
      'The request could not be processed.',
      'Запрос не удалось обработать. Проверьте данные.',
    );
  }
  return new AppError('INTERNAL', 500, 'An internal error occurred.');
}

export function wantsHtml(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '';
  return accept.includes('text/html');
}

export function sendError(
  error: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
  look: ErrorPageLook,
) {
  const appError = toAppError(error);
  if (appError.status >= 500) {
    request.log.error({ err: error }, 'request failed');
  } else {
    request.log.info({ code: appError.code, status: appError.status }, 'request refused');
  }
  reply.status(appError.status).headers(appError.headers);
  if (wantsHtml(request)) {
    const title = RU_TITLES[appError.status] ?? 'Ошибка';
    return reply
      .type('text/html; charset=utf-8')
      .send(
        renderDocument(
          h(
            Layout,
            { title, site: look.site, theme: look.theme, demo: look.demo },
            h(Alert, { kind: 'error' }, appError.userMessage),
            h('p', null, h('a', { href: '/' }, 'На главную')),
            h('p', { class: 'hint' }, `Код ошибки: ${appError.code}`),
          ),
        ),
      );
  }
  const problem: Problem = {
    type: `urn:soglasie:problem:${appError.code.toLowerCase().replaceAll('_', '-')}`,
    title: TITLES[appError.status] ?? 'Error',
    status: appError.status,
    detail: appError.expose ? appError.message : 'An internal error occurred.',
    code: appError.code,
    instance: request.id,
  };
  return reply.type('application/problem+json').send(problem);
}
