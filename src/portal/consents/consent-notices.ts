import type { Consent } from './consent.js';
import type { ConsentNotice } from './consent.service.js';

/**
 * What the citizen is told (SMS or e-mail) after a consent changes: the partner's name
 * and dates only, never the data itself. Returns [subject, text].
 */
export function consentNotice(
  type: ConsentNotice,
  consent: Consent,
  partner: string,
): [string, string] {
  const until = consent.expiresAt.toLocaleDateString('ru-RU', { timeZone: 'Europe/Moscow' });
  const manage = 'Управлять доступом можно в разделе «Управление доступом».';
  switch (type) {
    case 'consent.granted':
      return consent.status === 'pending'
        ? [
            'Запрос на подключение отправлен',
            `Госуслуги: вы разрешили сервису «${partner}» доступ к своим данным до ${until}. Подключение станет активным, когда сервис его подтвердит. ${manage}`,
          ]
        : [
            'Вы предоставили доступ к данным',
            `Госуслуги: вы предоставили сервису «${partner}» доступ к своим данным до ${until}. ${manage}`,
          ];
    case 'consent.revoked':
      return [
        'Доступ к данным отключён',
        `Госуслуги: доступ сервиса «${partner}» к вашим данным отключён. Сервис обязан удалить полученные данные.`,
      ];
    case 'consent.expired':
      return [
        'Срок доступа к данным истёк',
        `Госуслуги: срок доступа сервиса «${partner}» к вашим данным истёк. Сервис обязан удалить полученные данные.`,
      ];
    case 'consent.paused':
      return [
        'Доступ к данным приостановлен',
        `Госуслуги: доступ сервиса «${partner}» к вашим данным приостановлен. Возобновить его можно в разделе «Управление доступом».`,
      ];
    case 'consent.resumed':
      return [
        'Доступ к данным возобновлён',
        `Госуслуги: доступ сервиса «${partner}» к вашим данным возобновлён до ${until}. ${manage}`,
      ];
    case 'connection.failed':
      return [
        'Подключение не выполнено',
        `Госуслуги: подключение сервиса «${partner}» не выполнено. Причину вы найдёте в разделе «Управление доступом».`,
      ];
    case 'deletion.overdue':
      return [
        'Сервис не подтвердил удаление данных',
        `Госуслуги: сервис «${partner}» не подтвердил в срок удаление ваших данных после окончания доступа. Мы передали сведения для проверки.`,
      ];
  }
}
