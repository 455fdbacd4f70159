// The session: a server-side session behind an HttpOnly cookie. On load the console asks who it
// is (`whoami`); a 401 there means "not signed in", a 401 later ends the session and returns to
// the sign-in page. What the account may do comes with it (`scopes[].permissions`, `is_admin`).

import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { api, setSignedIn, setUnauthenticatedHandler } from './api/client';
import { allows } from './access';
import type { Permission, WhoAmI } from './api/types';

export { allows, mayAdminister } from './access';

interface Session {
  /** The signed-in account; null when signed out. */
  me: WhoAmI | null;
  name: string | null;
  /** Still asking the server whether a session exists. */
  checking: boolean;
  /** The session ended because the server rejected it. */
  expired: boolean;
  signIn: (name: string, password: string) => Promise<void>;
  signOut: () => Promise<void>;
  /** Forget the session locally (it already ended on the server). */
  drop: () => void;
}

const Ctx = createContext<Session | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [me, setMe] = useState<WhoAmI | null>(null);
  const [checking, setChecking] = useState(true);
  const [expired, setExpired] = useState(false);

  const drop = useCallback(() => {
    setSignedIn(false);
    setMe(null);
  }, []);

  useEffect(() => {
    setUnauthenticatedHandler(() => {
      setExpired(true);
      drop();
    });
    return () => setUnauthenticatedHandler(null);
  }, [drop]);

  // An existing session (the cookie survives reloads): ask who it is. Any failure means signed out.
  useEffect(() => {
    api.whoami().then(
      (who) => {
        setSignedIn(true);
        setMe(who);
        setChecking(false);
      },
      () => setChecking(false),
    );
  }, []);

  const signIn = useCallback(async (name: string, password: string) => {
    const res = await api.login(name, password);
    setSignedIn(true);
    setExpired(false);
    setMe(res.user);
  }, []);

  const signOut = useCallback(async () => {
    // Signed out from here on: a 401 of the sign-out itself (a session already ended elsewhere)
    // is not "your session ended".
    setSignedIn(false);
    try {
      await api.logout();
    } catch {
      /* the session is gone either way */
    }
    drop();
  }, [drop]);

  const value = useMemo(
    () => ({ me, name: me?.name ?? null, checking, expired, signIn, signOut, drop }),
    [me, checking, expired, signIn, signOut, drop],
  );
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useSession(): Session {
  const v = useContext(Ctx);
  if (!v) throw new Error('useSession outside SessionProvider');
  return v;
}

/** `allows` for the signed-in account. */
export function useCan(): (perm: Permission, scopeId?: number) => boolean {
  const { me } = useSession();
  return useCallback((perm: Permission, scopeId?: number) => allows(me, perm, scopeId), [me]);
}
