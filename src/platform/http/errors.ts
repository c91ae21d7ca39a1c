/**
 * Errors the HTTP layer knows how to show. Each has a stable `code` for API clients,
 * an HTTP `status`, and a Russian sentence for people. Only errors with `expose`
 * (status < 500) show their details; anything else is an internal error whose
 * details stay in the log.
 */
export class AppError extends Error {
  readonly expose: boolean;
  constructor(
    readonly code: string,
    readonly status: number,
    /** English detail for API clients (problem+json `detail`). */
    message: string,
    /** Russian sentence a person can act on, shown on pages. */
    readonly userMessage: string = 'Что-то пошло не так. Повторите попытку позже.',
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = new.target.name;
    this.expose = status < 500;
  }
}

export class BadRequestError extends AppError {
  constructor(code: string, message: string, userMessage = 'Проверьте введённые данные.') {
    super(code, 400, message, userMessage);
  }
}

export class UnauthorizedError extends AppError {
  constructor(
    message = 'Authentication required.',
    userMessage = 'Войдите, чтобы продолжить.',
    code = 'UNAUTHENTICATED',
  ) {
    super(code, 401, message, userMessage);
  }
}

export class ForbiddenError extends AppError {
  constructor(
    message = 'You are not allowed to do this.',
    userMessage = 'У вас нет прав на это действие.',
    code = 'FORBIDDEN',
  ) {
    super(code, 403, message, userMessage);
  }
}

export class NotFoundError extends AppError {
  constructor(message = 'Not found.', userMessage = 'Такой страницы нет.') {
    super('NOT_FOUND', 404, message, userMessage);
  }
}

export class CsrfError extends AppError {
  constructor() {
    super(
      'CSRF_TOKEN_INVALID',
      403,
      'The form token is missing or invalid.',
      'Страница устарела. Обновите её и повторите действие.',
    );
  }
}

export class TooManyAttemptsError extends AppError {
  constructor(
    readonly retryAfterSeconds: number,
    userMessage = 'Слишком много неудачных попыток.',
  ) {
    const minutes = Math.max(1, Math.ceil(retryAfterSeconds / 60));
    super(
      'TOO_MANY_ATTEMPTS',
      429,
      `Too many failed attempts; try again in ${retryAfterSeconds} seconds.`,
      `${userMessage} Попробуйте снова через ${minutes} ${pluralMinutes(minutes)}.`,
      { 'retry-after': String(retryAfterSeconds) },
    );
  }
}

export function pluralMinutes(n: number): string {
  const mod10 = n % 10;
  const mod100 = n % 100;
  if (mod10 === 1 && mod100 !== 11) return 'минуту';
  if (mod10 >= 2 && mod10 <= 4 && (mod100 < 12 || mod100 > 14)) return 'минуты';
  return 'минут';
}
