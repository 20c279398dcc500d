# `cmake --install build --prefix P`: the `stamen` command and the libraries
# it runs on, the public headers an app is written against (the message and
# programming-model layers, not the actors), the quickstart app, and the
# CMake package: find_package(Stamen) gives Stamen::app.
include(CMakePackageConfigHelpers)

install(TARGETS stamen RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS stamen_messages stamen_core EXPORT StamenTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS stamen_runner stamen_actors stamen_config
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
foreach(layer messages runtime apps/data)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${layer}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/stamen/${layer}
          FILES_MATCHING PATTERN "*.hpp")
endforeach()
# For apps with LibTorch (find_package(Stamen COMPONENTS torch)): the
# Tensor <-> Array bridge and the data set loaders and partitioners.
set_target_properties(stamen_torch_bridge PROPERTIES EXPORT_NAME torch_bridge)
set_target_properties(stamen_data PROPERTIES EXPORT_NAME data)
install(TARGETS stamen_torch_bridge stamen_data EXPORT StamenTorchTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT StamenTorchTargets NAMESPACE Stamen::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Stamen)

# Apps live in lib/stamen/apps, where `stamen` looks for them; their own
# files (stamen.toml, fault plans) in share/stamen/apps/<name>.
set_target_properties(stamen_app_quickstart PROPERTIES
  INSTALL_RPATH "$ORIGIN/../..")
install(TARGETS stamen_app_quickstart LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/stamen/apps)
install(FILES ${PROJECT_SOURCE_DIR}/apps/quickstart/stamen.toml
        DESTINATION ${CMAKE_INSTALL_DATADIR}/stamen/apps/quickstart)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/apps/quickstart/faults
        DESTINATION ${CMAKE_INSTALL_DATADIR}/stamen/apps/quickstart)

install(EXPORT StamenTargets NAMESPACE Stamen::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Stamen)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/StamenConfig.cmake.in
  ${PROJECT_BINARY_DIR}/StamenConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Stamen)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/StamenConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/StamenConfig.cmake ${PROJECT_BINARY_DIR}/StamenConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Stamen)

# `cmake/do package`: a Debian package of the above, installed under /usr.
# Its Depends come from dpkg-shlibdeps (the libraries the binaries really
# load: CAF, LibTorch for the quickstart, Cap'n Proto, OpenSSL, ...).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME stamen)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Federated learning as an actor system, after Flower")
set(CPACK_PACKAGE_CONTACT "Stamen developers <stamen-dev@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${CMAKE_LIBRARY_OUTPUT_DIRECTORY})
# The quickstart's default data; the command works without it.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "dataset-fashion-mnist")
# Headers and the CMake package are for writing apps: they need a compiler.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "g++, cmake")
include(CPack)
