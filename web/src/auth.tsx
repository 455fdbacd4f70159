// The session: an API token kept in localStorage (it survives reloads) until sign-out or until
// the server answers 401.

import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { api, getToken, setToken, setUnauthenticatedHandler } from './api/client';

interface Session {
  token: string | null;
  name: string | null;
  /** The session ended because the server rejected the token. */
  expired: boolean;
  signIn: (token: string) => Promise<void>;
  signOut: () => void;
}

const Ctx = createContext<Session | null>(null);

const NAME_KEY = 'shoal.user';

export function SessionProvider({ children }: { children: ReactNode }) {
  const [token, setTok] = useState<string | null>(getToken);
  const [name, setName] = useState<string | null>(() => localStorage.getItem(NAME_KEY));
  const [expired, setExpired] = useState(false);

  const signOut = useCallback(() => {
    setToken(null);
    localStorage.removeItem(NAME_KEY);
    setTok(null);
    setName(null);
  }, []);

  useEffect(() => {
    setUnauthenticatedHandler(() => {
      setExpired(true);
      signOut();
    });
    return () => setUnauthenticatedHandler(null);
  }, [signOut]);

  // A stored token without a name (or from an older session): ask who it is. A 401 here ends the
  // session through the handler above.
  useEffect(() => {
    if (!token || name) return;
    api.whoami().then(
      (me) => {
        localStorage.setItem(NAME_KEY, me.name);
        setName(me.name);
      },
      () => {},
    );
  }, [token, name]);

  const signIn = useCallback(async (tok: string) => {
    const me = await api.whoami(tok);
    setToken(tok);
    localStorage.setItem(NAME_KEY, me.name);
    setExpired(false);
    setTok(tok);
    setName(me.name);
  }, []);

  const value = useMemo(() => ({ token, name, expired, signIn, signOut }), [token, name, expired, signIn, signOut]);
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useSession(): Session {
  const v = useContext(Ctx);
  if (!v) throw new Error('useSession outside SessionProvider');
  return v;
}
