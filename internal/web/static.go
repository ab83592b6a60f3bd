package web

// routeStatic adds the dashboards' pages and assets.
func (s *Server) routeStatic() {}
